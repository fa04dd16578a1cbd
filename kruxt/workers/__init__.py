"""Worker processes: the composition root that builds adapters from settings and registers
the workflows and activities on the task queue."""
