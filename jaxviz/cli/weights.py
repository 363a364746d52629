"""``jaxviz weights convert|info``."""

from __future__ import annotations

import argparse
import json

from jaxviz.cli import common


def register(sub) -> None:
    parser = sub.add_parser("weights", help="convert and inspect weight files")
    wsub = parser.add_subparsers(dest="weights_command", metavar="ACTION", required=True)

    convert = wsub.add_parser(
        "convert",
        help="convert a torchvision weight file to jaxviz's safetensors format",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
        "  jaxviz weights convert squeezenet1_1-b8a52dc0.pth            # into jaxviz's cache\n"
        "  jaxviz weights convert weights.npz --out sq11.safetensors",
    )
    convert.add_argument("src", help="source file: .pth/.pt (weights_only), .npz or .safetensors")
    convert.add_argument("--out", help="destination (default: <cache>/<arch>.safetensors, used by default)")
    convert.add_argument("--arch", choices=common.ARCHITECTURES, help="default: detected")
    convert.set_defaults(func=run_convert)

    info = wsub.add_parser("info", help="which weight file is used, its sha256, architecture, parameter count")
    common.add_model_options(info)
    info.add_argument("--json", action="store_true", help="print JSON")
    info.set_defaults(func=run_info)


def run_convert(args) -> int:
    from jaxviz.models import weights

    out = weights.convert(args.src, args.out, arch=args.arch)
    print(out)
    return common.EXIT_OK


def run_info(args) -> int:
    from jaxviz.models import model, weights

    arch = args.arch or common.DEFAULT_ARCH
    source = weights.resolve_weights(arch, args.weights)
    params, _ = weights.load_params(source, arch)
    m = model.Model(params, arch)
    info = {
        "path": str(source.path),
        "found_by": source.how,
        "sha256": source.sha256,
        "arch": arch,
        "num_params": m.num_params,
        "cache_dir": str(weights.cache_dir()),
    }
    if args.json:
        print(json.dumps(info))
    else:
        for key, value in info.items():
            print(f"{key:11s} {value}")
    return common.EXIT_OK
