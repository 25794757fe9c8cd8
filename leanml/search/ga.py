"""Genetic algorithm with DEAP: mixed-type genome, tournament selection, elitism, NSGA-II.

A genome holds one native value per dimension (int, float, or the categorical choice).
Crossover is uniform (gene-wise swap); mutation is type-aware: numeric genes take a Gaussian
step in the dimension's unit scale (log scale for log dimensions), categoricals jump to
another choice. Single-objective: tournament selection, the best `elites` of a hall of fame
carried over. Multi-objective (`search.objective.kind: pareto`): NSGA-II (mu + lambda) over
(val accuracy ↑, parameters ↓). DEAP draws from Python's global `random`; that stream is kept
separate (training reseeds it) so that runs and resumed runs are identical.
"""

from __future__ import annotations

import random
from contextlib import contextmanager

from deap import base, creator, tools

from leanml.trials.base import Algorithm, Config

if not hasattr(creator, "LeanmlFitnessMax"):
    creator.create("LeanmlFitnessMax", base.Fitness, weights=(1.0,))
    creator.create("LeanmlFitnessPareto", base.Fitness, weights=(1.0, -1.0))
    creator.create("LeanmlGenome", list, fitness=creator.LeanmlFitnessMax)
    creator.create("LeanmlParetoGenome", list, fitness=creator.LeanmlFitnessPareto)


class GASearch(Algorithm):
    multi_objective = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.ga = self.cfg.ga
        self._state = random.Random(self.seed).getstate()
        self.genome = creator.LeanmlParetoGenome if self.pareto else creator.LeanmlGenome
        self.hof = tools.ParetoFront() if self.pareto else tools.HallOfFame(max(1, self.ga.elites))
        self.population: list = []
        self.pending: list = []
        self.generation = 0

    @contextmanager
    def _own_rng(self):
        saved = random.getstate()
        random.setstate(self._state)
        try:
            yield
        finally:
            self._state = random.getstate()
            random.setstate(saved)

    # genome <-> config
    def _decode(self, genome) -> Config:
        return dict(zip(self.space.names, genome, strict=True))

    def _random_genome(self):
        return self.genome(d.from_unit(random.random()) for d in self.space.dims)

    def _mutate(self, genome) -> None:
        for i, d in enumerate(self.space.dims):
            if random.random() >= self.ga.gene_mutation_prob:
                continue
            if d.type == "categorical":
                others = [c for c in d.choices if c != genome[i]] or list(d.choices)
                genome[i] = random.choice(others)
            else:
                u = d.to_unit(genome[i]) + random.gauss(0.0, 0.2)
                genome[i] = d.from_unit(u)
        del genome.fitness.values

    def _vary(self, parents) -> list:
        offspring = [self.genome(p) for p in parents]
        for a, b in zip(offspring[::2], offspring[1::2], strict=False):
            if random.random() < self.ga.crossover_prob:
                tools.cxUniform(a, b, indpb=0.5)
        for child in offspring:
            if random.random() < self.ga.mutation_prob:
                self._mutate(child)
        return offspring

    def ask(self) -> list[Config]:
        if self.ga.generations is not None and self.generation > self.ga.generations:
            return []
        with self._own_rng():
            if not self.population and not self.pending:
                # the first population: the initial configs (the baseline), then random genomes
                seeded = [
                    self.genome(c[name] for name in self.space.names)
                    for c in self.take_initial(self.ga.population)
                ]
                rest = [self._random_genome() for _ in range(self.ga.population - len(seeded))]
                self.pending = seeded + rest
            elif self.pareto:
                # the survivors (already NSGA-II sorted) breed in random pairs
                parents = random.sample(self.population, len(self.population))
                self.pending = self._vary(parents)
            else:
                n = self.ga.population - min(self.ga.elites, len(self.hof))
                parents = tools.selTournament(self.population, n, self.ga.tournament_size)
                self.pending = self._vary(parents)
        return [self._decode(g) for g in self.pending]

    def tell(self, configs, scores) -> None:
        for genome, score in zip(self.pending, scores, strict=True):
            genome.fitness.values = tuple(score) if self.pareto else (float(score),)
        if self.pareto:
            # NSGA-II survival: best `population` of parents + offspring by rank and crowding
            pool = self.population + self.pending
            self.population = tools.selNSGA2(pool, self.ga.population)
        else:
            elites = [self.genome(e) for e in self.hof[: self.ga.elites]] if self.population else []
            for elite, source in zip(elites, self.hof, strict=False):
                elite.fitness.values = source.fitness.values
            self.population = self.pending + elites
        self.hof.update(self.pending)
        self.pending = []
        self.generation += 1
