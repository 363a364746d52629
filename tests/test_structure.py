"""The shape of the library, checked: one signature for every attribution method, no
architecture knowledge outside ``jaxviz/models``, no import that runs upward, and the
deprecated names still working (with a warning)."""

from __future__ import annotations

import ast
import importlib
import inspect
import warnings
from pathlib import Path

import jax
import numpy as np
import pytest

import jaxviz
import jaxviz.attribution
from jaxviz import choices
from jaxviz.models import ARCHITECTURES, describe, relevance

PACKAGE = Path(jaxviz.__file__).parent

# Each module's layer: a module may import only from its own layer or lower ones.
LAYERS = {
    "jaxviz.errors": 0, "jaxviz.choices": 0, "jaxviz._io": 1, "jaxviz._checks": 1, "jaxviz._chunks": 1, "jaxviz._compiled": 1,
    "jaxviz._deprecation": 1, "jaxviz._random": 1, "jaxviz.labels": 1, "jaxviz.images": 2, "jaxviz.interpolation": 2,
    "jaxviz.models": 3, "jaxviz.scoring": 4, "jaxviz.attribution": 5, "jaxviz.synthesis": 5,
    "jaxviz.figures": 5, "jaxviz.sharding": 5, "jaxviz": 6, "jaxviz.cli": 7,
}


def _layer(module: str) -> int:
    while module not in LAYERS:
        module = module.rsplit(".", 1)[0]
    return LAYERS[module]


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        yield name, path, ast.parse(path.read_text(encoding="utf-8"))


def _imports(name: str, path: Path, tree: ast.Module):
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + [base]).strip(".")
            # `from a.b import c` imports a.b.c (a submodule) or a name of a.b: rank by that
            yield from (f"{base}.{alias.name}" for alias in node.names)


def test_every_attribution_method_has_the_one_signature():
    """``f(model, x, target, *, options)``: three positional parameters, every option by keyword."""
    checked = 0
    for name in jaxviz.attribution.__all__:
        function = getattr(jaxviz.attribution, name)
        if not callable(function) or name in ("smooth", "noise_tunnel"):
            continue
        parameters = list(inspect.signature(function).parameters.values())
        assert [p.name for p in parameters[:3]] == ["model", "x", "target"], name
        assert all(p.kind is p.POSITIONAL_OR_KEYWORD for p in parameters[:3]), name
        assert all(p.kind in (p.KEYWORD_ONLY, p.VAR_KEYWORD) for p in parameters[3:]), name
        assert not {p.name for p in parameters} & {"abs", "sum", "min", "max", "type", "input"}, name  # builtins
        checked += 1
    assert checked == 52
    # smooth wraps a method and keeps that signature (its key keyword-only)
    smoothed = inspect.signature(jaxviz.smooth(jaxviz.saliency, nt_samples=2))
    assert list(smoothed.parameters)[:3] == ["model", "x", "target"]
    assert smoothed.parameters["key"].kind is inspect.Parameter.KEYWORD_ONLY
    for synthesis in (jaxviz.fooling_images, jaxviz.class_visualization, jaxviz.style_transfer):
        options = list(inspect.signature(synthesis).parameters.values())[3 if synthesis is not
                                                                          jaxviz.class_visualization else 2:]
        assert all(p.kind is p.KEYWORD_ONLY for p in options), synthesis.__name__


def test_every_method_and_metric_cites_its_paper():
    """Each public attribution method, metric and synthesis function has a Google-style
    ``References:`` section (the issues' "documented, the paper under References")."""
    import jaxviz.metrics
    import jaxviz.synthesis

    uncited, checked = [], 0
    for module, exempt in ((jaxviz.attribution, {"noise_tunnel"}),
                           (jaxviz.metrics, set()),
                           (jaxviz.synthesis, {"make_fooling_images", "content_loss", "gaussian_blur", "gram_matrix",
                                               "style_loss", "tv_loss"})):
        for name in module.__all__:
            function = getattr(module, name)
            if not inspect.isfunction(function) or name in exempt:
                continue
            checked += 1
            if "\n    References:\n" not in (function.__doc__ or ""):
                uncited.append(f"{module.__name__}.{name}")
    assert not uncited
    assert checked > 70


def test_no_module_outside_models_imports_an_architecture_or_names_a_layer():
    layer_names = {name for arch in ARCHITECTURES for name in describe(arch).layer_names}
    for name, path, tree in _modules():
        if name.startswith("jaxviz.models"):
            continue
        for imported in _imports(name, path, tree):
            assert not imported.startswith("jaxviz.models.squeezenet"), f"{name} imports {imported}"
        docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                      if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef))
                      and node.body and isinstance(node.body[0], ast.Expr)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
                assert node.value not in layer_names, f"{name}:{node.lineno} names the layer {node.value!r}"


def test_no_module_imports_upward():
    for name, path, tree in _modules():
        own = _layer(name)
        for imported in _imports(name, path, tree):
            if imported == "jaxviz" or imported.startswith("jaxviz."):
                assert _layer(imported) <= own, f"{name} (layer {own}) imports {imported} (layer {_layer(imported)})"


def test_the_checks_import_nothing_above_them():
    name, path, tree = next(m for m in _modules() if m[0] == "jaxviz._checks")
    assert {i for i in _imports(name, path, tree) if i.startswith("jaxviz")} <= {"jaxviz.errors",
                                                                                 "jaxviz.errors.InputError",
                                                                                 "jaxviz.errors.InputTypeError"}


def test_the_choices_are_what_the_library_implements():
    """``jaxviz.choices`` (plain Python: the command line reads it before jax loads) names
    exactly the architectures each family module builds and the composites LRP has."""
    for family, archs in choices.FAMILIES.items():
        assert importlib.import_module(f"jaxviz.models.families.{family}").ARCHITECTURES == archs, family
    assert tuple(relevance.COMPOSITES) == choices.LRP_COMPOSITES
    name, path, tree = next(m for m in _modules() if m[0] == "jaxviz.choices")
    assert list(_imports(name, path, tree)) == []


@pytest.fixture(scope="module")
def small():
    model = jaxviz.load_model()
    x = np.random.default_rng(0).normal(size=(2, 32, 32, 3)).astype(np.float32)
    return model, x, np.array([1, 2])


def _warns(call):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = call()
    assert any(issubclass(w.category, DeprecationWarning) for w in caught), "no DeprecationWarning"
    return result


def test_deprecated_names_and_call_forms_warn_and_give_the_same_result(small):
    model, x, t = small
    key = jax.random.key(0)
    same = np.testing.assert_array_equal
    same(_warns(lambda: jaxviz.noise_tunnel(jaxviz.saliency, model, x, t, nt_samples=2, key=key)),
         jaxviz.smooth(jaxviz.saliency, nt_samples=2)(model, x, t, key=key))
    same(_warns(lambda: jaxviz.saliency(model, x, t, abs=False)), jaxviz.saliency(model, x, t, absolute=False))
    same(_warns(lambda: jaxviz.layer_gradcam(model, x, t, "features.9")),
         jaxviz.layer_gradcam(model, x, t, layer="features.9"))
    same(_warns(lambda: jaxviz.gradcam(model, x, t, "features.9")), jaxviz.gradcam(model, x, t, layer="features.9"))
    same(_warns(lambda: jaxviz.integrated_gradients(model, x, t, 0.5, n_steps=2)),
         jaxviz.integrated_gradients(model, x, t, baselines=0.5, n_steps=2))
    same(_warns(lambda: jaxviz.occlusion(model, x, t, (16, 16, 3), strides=16)),
         jaxviz.occlusion(model, x, t, sliding_window_shapes=(16, 16, 3), strides=16))
    same(_warns(lambda: jaxviz.make_fooling_images(model, x, t, max_iter=1).images),
         jaxviz.fooling_images(model, x, t, max_iter=1).images)
    old = _warns(lambda: jaxviz.class_visualization(model, 3, key, num_iterations=1, image_size=32))
    assert isinstance(old, jaxviz.ClassVisualizationResult) and jaxviz.ClassVisualization is jaxviz.ClassVisualizationResult
    same(old.images, jaxviz.class_visualization(model, 3, key=key, num_iterations=1, image_size=32).images)
    with pytest.raises(TypeError, match="multiple values"):
        jaxviz.integrated_gradients(model, x, t, 0.5, baselines=0.5)


def test_course_presentations_are_the_methods_reshaped(small):
    model, x, t = small
    np.testing.assert_array_equal(jaxviz.saliency_map(model, x, t), np.abs(jaxviz.saliency(model, x, t)).max(-1))
    np.testing.assert_array_equal(jaxviz.gradcam(model, x, t),
                                  jaxviz.layer_gradcam(model, x, t, relu_attributions=True)[..., 0])
    # the default layer comes from the model's description, not from the method
    assert describe("squeezenet1_1").default_layer == "features.12"
    np.testing.assert_array_equal(jaxviz.layer_gradcam(model, x, t),
                                  jaxviz.layer_gradcam(model, x, t, layer=model.architecture.default_layer))


def test_adding_a_cli_method_is_one_declaration():
    from jaxviz.cli import attribution_methods, evaluation, synthesis_methods
    from jaxviz.cli.methods import METHODS

    assert list(METHODS) == [m.name for m in (*attribution_methods.DECLARED, *synthesis_methods.DECLARED,
                                              *evaluation.DECLARED)]
    for path in ("cli/engine.py", "cli/plan.py", "cli/batch.py", "cli/demo.py", "cli/methods.py"):
        source = (PACKAGE / path).read_text()
        for method in METHODS:
            assert f'name == "{method}"' not in source and f"name == '{method}'" not in source, (path, method)
