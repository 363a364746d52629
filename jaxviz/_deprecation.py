"""Old names and old call forms kept working for one release, each with a warning."""

from __future__ import annotations

import functools
import inspect
import warnings


def _warn(message: str) -> None:
    warnings.warn(message, DeprecationWarning, stacklevel=3)


def alias(function, old_name: str):
    """``function`` under its old name: the same call, with a DeprecationWarning."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        _warn(f"jaxviz.{old_name} is deprecated; use jaxviz.{function.__name__}")
        return function(*args, **kwargs)

    wrapper.__name__ = wrapper.__qualname__ = old_name
    return wrapper


def positional_keywords(*names: str, after: int = 3):
    """Lets the options ``names``, now keyword-only, still be passed by position (after the
    first ``after`` arguments), with a DeprecationWarning.  ``inspect.signature`` shows the
    new signature."""

    def decorate(function):
        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            if len(args) > after:
                extra = args[after:]
                if len(extra) > len(names):
                    raise TypeError(f"{function.__name__}() takes {after} positional arguments "
                                    f"but {len(args)} were given")
                moved = dict(zip(names, extra))
                clash = set(moved) & set(kwargs)
                if clash:
                    raise TypeError(f"{function.__name__}() got multiple values for {sorted(clash)}")
                _warn(f"{function.__name__}: pass {', '.join(f'`{n}=`' for n in moved)} by keyword; "
                      f"positional use is deprecated")
                args, kwargs = args[:after], {**kwargs, **moved}
            return function(*args, **kwargs)

        wrapper.__signature__ = inspect.signature(function)
        return wrapper

    return decorate


def renamed_keyword(old: str, new: str):
    """Accepts the keyword ``old`` for ``new`` with a DeprecationWarning."""

    def decorate(function):
        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            if old in kwargs:
                if new in kwargs:
                    raise TypeError(f"{function.__name__}() got both `{old}` and `{new}`")
                _warn(f"{function.__name__}: `{old}=` is deprecated; use `{new}=`")
                kwargs[new] = kwargs.pop(old)
            return function(*args, **kwargs)

        wrapper.__signature__ = inspect.signature(function)
        return wrapper

    return decorate
