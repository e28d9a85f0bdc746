"""Whole-mesh fp32 allreduce (programs/lib/collectives.wsa): emulated cycles beside the
textbook model's (wse_emu.kernels.collectives.model_cycles) and the run's host seconds
(assembly and load excluded). Every result is checked against the chain-order reference.

    python bench/collectives_table.py [--sides 16,64] [--n 64,1024] [--arch wse3]"""

import argparse
import time

import numpy as np

from wse_emu.kernels import collectives as coll


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sides", default="16,64")
    ap.add_argument("--n", default="64,1024")
    ap.add_argument("--arch", default="wse3", choices=("wse2", "wse3"))
    args = ap.parse_args()
    print(f"{'mesh':>7} {'N':>5} {'emulated':>9} {'model':>7} {'ratio':>6} {'host s':>7}")
    for side in (int(s) for s in args.sides.split(",")):
        for n in (int(v) for v in args.n.split(",")):
            x = np.random.default_rng(0).standard_normal((side, side, n)).astype(np.float32)
            mesh = coll.load("allreduce", "mesh", x, arch=args.arch)
            t = time.perf_counter()
            result = mesh.run()
            t = time.perf_counter() - t
            want = coll.reference("allreduce", "mesh", x)
            assert np.array_equal(mesh.memcpy_d2h("buf"), want), "allreduce result differs"
            model = coll.model_cycles("allreduce", "mesh", side, side, n, arch=args.arch)
            print(
                f"{f'{side}x{side}':>7} {n:>5} {result.cycles:>9} {model:>7} "
                f"{result.cycles / model:>6.3f} {t:>7.2f}"
            )


if __name__ == "__main__":
    main()
