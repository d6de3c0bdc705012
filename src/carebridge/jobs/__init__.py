"""The job runner adapter: procrastinate at scale, an in-process runner when embedded."""
