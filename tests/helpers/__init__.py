"""What the tests share, in one place: paths of the repository and its fixtures, record-folder
helpers, and the engine variants every engine test runs (``tests`` is on pytest's ``pythonpath``)."""
