"""The course suite: one set of checks for every phase and part declared in graders/course.toml."""
