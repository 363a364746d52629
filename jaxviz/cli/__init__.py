"""The ``jaxviz`` command."""
