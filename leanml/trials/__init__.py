"""The trial engine shared by search and NAS: ask/tell, runner, checkpoint, executors, study."""
