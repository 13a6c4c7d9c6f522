"""`sao-harness audio check FILE [--reference REF] [--json]`: exit 0 pass, 1 fail, 2 bad input."""

from __future__ import annotations

from harness.audio import io
from harness.audio.check import check_audio
from harness.cli.output import emit
from harness.errors import BadInput


def register(subparsers):
    audio = subparsers.add_parser("audio", help="audio-quality checks")
    sub = audio.add_subparsers(dest="audio_command", required=True)
    p = sub.add_parser("check", help="check a WAV/FLAC/OGG file against thresholds.toml")
    p.add_argument("file", help="audio to check (44100 Hz, mono or stereo)")
    p.add_argument("--reference", help="the reference implementation's output for the same "
                                       "inputs; enables the reference-relative checks "
                                       "(default: none, absolute checks only)")
    p.add_argument("--json", action="store_true", help="machine-readable report on stdout")
    p.set_defaults(func=run_check, inputs=("file", "reference"))


def run_check(args) -> int:
    audio, sr = io.load(args.file)
    reference = io.load(args.reference)[0] if args.reference else None
    if reference is not None and reference.shape != audio.shape:
        raise BadInput(args.reference, f"shape {reference.shape} differs from {args.file}'s "
                                       f"{audio.shape}")
    report = check_audio(audio, sr, reference=reference)
    if args.json:
        emit(args, report.to_dict(file=str(args.file)), indent=None)
    else:
        for c in report.checks:
            print(c)
        print(f"{args.file}: {'PASS' if report.passed else 'FAIL ' + ', '.join(report.failed)}")
    return 0 if report.passed else 1
