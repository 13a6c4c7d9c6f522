"""`sao-harness mutants run`: every catalogued mutant against the harness's checks.

Exit 0: the unmutated model passes every check, every mutant is caught and every audible
mutant is also flagged by the audio checks on its own output; 1: a mutant survived, an
audible one went unheard, or the control raised a false alarm; 2: bad input (missing golden,
unknown mutant).
"""

from __future__ import annotations

import time

from harness.cli.options import add_device_argument
from harness.cli.output import emit
from harness.progress import progress


def register(sub) -> None:
    p = sub.add_parser("mutants", help="mutation catalogue: known porting bugs vs the checks")
    msub = p.add_subparsers(dest="mutants_command", required=True)
    r = msub.add_parser("run", help="apply each mutant to the tiny model and run the golden, "
                                    "audio and WAV checks; the unmutated model runs too")
    r.add_argument("--only", action="extend", nargs="+", metavar="NAME",
                   help="run only these mutants (the unmutated control always runs; default: "
                        "every mutant)")
    r.add_argument("--case", action="append", metavar="CASE",
                   help="compare with only these golden cases (default: every tiny torch case: "
                        "tiny-torch, -euler, -cfg, -long); tiny-torch always runs")
    r.add_argument("--config", choices=("tiny", "tiny-trained"), default="tiny",
                   help="seeded synthetic tiny model, or the tiny model trained on real music "
                        "(its clips are music-like, so the absolute audio checks apply)")
    r.add_argument("--heard-table", action="store_true",
                   help="print a Markdown table of the audio checks that hear each mutant")
    r.add_argument("--before", metavar="FILE.json",
                   help="the --json output of an earlier run (e.g. --config tiny): the heard "
                        "table shows its verdicts beside this run's, before / after (default: "
                        "this run alone)")
    r.add_argument("--json", action="store_true", help="machine-readable result on stdout")
    add_device_argument(r)
    r.set_defaults(func=cmd_run)
    ls = msub.add_parser("list", help="name, expected module and symptom of every mutant")
    ls.add_argument("--json", action="store_true", help="machine-readable list on stdout")
    ls.set_defaults(func=cmd_list)


def cmd_list(args) -> int:
    from harness.mutants.run import CATALOGUE

    rows = [{"name": m.name, "expected_module": m.expected_module, "symptom": m.symptom,
             "audible": m.audible} for m in CATALOGUE.values()]
    if args.json:
        emit(args, {"mutants": rows}, passed=True)
    else:
        for r in rows:
            print(f"{r['name']}  [{r['expected_module']}]\n    {r['symptom']}")
    return 0


def cmd_run(args) -> int:
    from harness.mutants.run import (CASES, Bench, heard_before_after, heard_rows, heard_table,
                                     run_catalogue)

    t0 = time.perf_counter()
    before = _read_before(args.before) if args.before else None
    unknown = sorted(set(args.case or ()) - set(CASES))
    if unknown:
        from harness.errors import BadInput

        raise BadInput(None, f"--case {unknown[0]}: not one of {', '.join(CASES)}")
    if args.case:
        progress(f"loading the {args.config} model and goldens {', '.join(args.case)}")
    bench = Bench(cases=tuple(args.case), model=args.config) if args.case else None
    control, *mutants = outcomes = run_catalogue(args.only, bench, model=args.config)
    seconds = time.perf_counter() - t0
    survived = [o.name for o in mutants if not o.caught]
    localized = sum(o.localized for o in mutants)
    unheard = [o.name for o in mutants if o.audible and not o.heard]
    audible = sum(o.audible for o in mutants)
    passed = not control.caught and not survived and not unheard
    if args.json:
        from harness.provenance import provenance

        emit(args, {"passed": passed, "provenance": provenance(), "seconds": round(seconds, 2),
                    "control": control.to_dict(),
                    "caught": len(mutants) - len(survived), "localized": localized,
                    "audible": audible, "heard": audible - len(unheard), "unheard": unheard,
                    "model": args.config, "mutants": [o.to_dict() for o in mutants],
                    "heard_table": heard_rows([o.to_dict() for o in outcomes])})
    else:
        alarm = ", ".join(control.caught_by) or "no check fired"
        print(f"{control.name}: {'FALSE ALARM: ' if control.caught else 'PASS: '}{alarm}")
        for o in mutants:
            state = "caught" if o.caught else "SURVIVED"
            loc = "ok" if o.localized else "MISPLACED"
            heard = ("heard" if o.heard else "UNHEARD") if o.audible else "inaudible"
            print(f"{o.name}: {state} by {', '.join(o.caught_by) or '-'} -> {o.localized_to} "
                  f"({o.where}{', ' + o.case if o.case else ''}) expected {o.expected_module} "
                  f"[{loc}, {heard}]")
        print(f"{len(mutants) - len(survived)}/{len(mutants)} caught, {localized}/{len(mutants)} "
              f"localized, {audible - len(unheard)}/{audible} audible ones heard, {seconds:.1f} s")
        if args.heard_table:
            print(heard_table(outcomes) if before is None else
                  heard_before_after(before, [o.to_dict() for o in outcomes]))
    return 0 if passed else 1


def _read_before(path: str) -> list[dict]:
    from harness.errors import BadInput
    from harness.files import read_json_object

    data = read_json_object(path, "mutants run JSON")
    try:
        return [dict(data["control"]), *map(dict, data["mutants"])]
    except (KeyError, TypeError, ValueError) as e:
        raise BadInput(path, f"not a `mutants run --json` output ({type(e).__name__}: {e})") \
            from None
