"""``python -m training {methods,train,cost,convert}`` - run from the repository root.

Exit status: 0 success, 2 unusable config / data / checkpoint / weights (message on stderr).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys

EXIT_BAD_INPUT = 2


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m training", description="Train the learned methods of "
                                 "napari-unrollrecon (single process, or DDP under torchrun).")
    sub = ap.add_subparsers(dest="command", required=True)
    sub.add_parser("methods", help="list trainable methods, their model presets and config files")

    t = sub.add_parser("train", help="train a method from a config",
                       description="Train from training/configs/NAME.toml (or a .toml path). Launch with "
                       "`torchrun --standalone --nproc_per_node N -m training train ...` for DDP.")
    _common(t)
    t.add_argument("--resume", default=None, metavar="CKPT|auto",
                   help="continue from a checkpoint .safetensors, or 'auto' = newest in OUT/checkpoints")
    t.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    t.add_argument("--dry-run", action="store_true", help="load data and model, print a summary, do not train")

    c = sub.add_parser("cost", help="FLOPs per step and a GPU-time estimate for a config (plus a CPU measurement)")
    _common(c)
    c.add_argument("--measure", type=int, default=0, metavar="N", help="also time N training steps here")
    c.add_argument("--tflops", type=float, default=None, help="sustained TFLOP/s of your GPU for the estimate")

    v = sub.add_parser("convert", help="turn a torch .pt/.pth state dict into .safetensors + model card")
    v.add_argument("source", help=".pt/.pth file (read with torch.load(weights_only=True))")
    v.add_argument("--method", required=True, help="method name")
    v.add_argument("--preset", default="paper", help="model preset of the method (default: %(default)s)")
    v.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="model config override")
    v.add_argument("--note", default="", help="where the weights come from (goes into the card)")
    v.add_argument("-o", "--output", required=True, help="output .safetensors")
    return ap


def _common(p):
    p.add_argument("config", help="config name in training/configs (e.g. cgpd-csnet) or a .toml path")
    p.add_argument("--profile", default=None, help="profile in the config (paper, cpu, ...; default: the file's)")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override, repeatable: --set train.steps=100 --set data.patch=64")


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = _parser().parse_args(argv)
    from training.checkpoint import CheckpointError
    from training.config import ConfigError
    from training.data import DataError
    from napari_unrollrecon.methods.learned import WeightsError

    try:
        return COMMANDS[args.command](args, argv)
    except (ConfigError, DataError, CheckpointError, WeightsError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT


def cmd_methods(args, argv) -> int:
    import tomllib

    from training.config import CONFIG_DIR
    from training.methods import trainable

    configs = {}
    for path in sorted(CONFIG_DIR.glob("*.toml")):
        raw = tomllib.loads(path.read_text())
        configs.setdefault(raw.get("method"), []).append(f"{path.stem} (profiles: {', '.join(raw.get('profile', {}))})")
    for t in trainable():
        print(f"{t.name}: presets {', '.join(t.training.configs)}; configs {'; '.join(configs.get(t.name, ['none']))}")
    missing = sorted(m for m in configs if m not in {t.name for t in trainable()})
    for m in missing:
        print(f"{m}: config present, method not available yet ({'; '.join(configs[m])})")
    return 0


def cmd_train(args, argv) -> int:
    from training import config as C

    cfg = C.load(args.config, args.profile, args.set)
    command = "python -m training " + " ".join(shlex.quote(a) for a in argv)
    if args.dry_run:
        return _dry_run(cfg)
    from training.trainer import train

    summary = train(cfg, resume=args.resume, quiet=args.quiet, command=command)
    if int(os.environ.get("RANK", "0")) == 0:
        print(json.dumps({k: v for k, v in summary.items() if k != "rank_digests"}, indent=1))
    return 0


def _dry_run(cfg) -> int:
    from training import config as C
    from training import data as D
    from training.methods import resolve

    method = resolve(cfg["method"])
    model_cfg = C.model_config(cfg, method.training.configs)
    train, val, desc = D.build(cfg["data"], method.modalities)
    model = method.training.build_model(model_cfg)
    n = sum(p.numel() for p in model.parameters())
    print(json.dumps({"method": method.name, "profile": cfg["profile"], "model_config": model_cfg,
                      "parameters": n, "n_train": len(train), "n_val": len(val), "data": desc,
                      "train": cfg["train"]}, indent=1, default=str))
    return 0


def cmd_cost(args, argv) -> int:
    from training import config as C
    from training.cost import report

    cfg = C.load(args.config, args.profile, args.set)
    print(report(cfg, measure=args.measure, tflops=args.tflops))
    return 0


def cmd_convert(args, argv) -> int:
    from training import config as C
    from training.methods import resolve
    from napari_unrollrecon.methods import learned

    method = resolve(args.method)
    cfg = {"method": method.name, "model": {"preset": args.preset}}
    for item in args.set:
        keys, value = C.parse_override(item)
        C._set(cfg["model"], keys[1:] if keys[0] == "model" else keys, value)
    model_cfg = C.model_config(cfg, method.training.configs)
    state = learned.load_state(args.source)
    model = method.training.build_model(model_cfg)
    missing, unexpected, wrong = learned._compare(model.state_dict(), state)
    if missing or unexpected or wrong:
        raise learned.WeightsError(f"{args.source} does not fit {method.name} preset {args.preset}: missing "
                                   f"{missing[:3]}, unexpected {unexpected[:3]}, shapes {wrong[:3]}")
    card = {"method": method.name, "config": model_cfg, "data": args.note or "converted; origin not stated",
            "steps": None, "wall_time_s": None, "metrics": {}, "converted_from": str(args.source),
            "command": "python -m training " + " ".join(shlex.quote(a) for a in argv)}
    out = learned.save_weights(state, args.output, card)
    print(f"wrote {out} and {learned.card_path(out)}")
    return 0


COMMANDS = {"methods": cmd_methods, "train": cmd_train, "cost": cmd_cost, "convert": cmd_convert}
