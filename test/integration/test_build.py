# SPDX-License-Identifier: MIT
"""The build as a packager and an admin meet it: `make distcheck` builds
the release tarball out of tree from a read-only source at the default
-O2 (where gcc finds warnings that the -O1 sanitizer build does not, and
-Werror makes them fatal), runs the unit tests, and checks that
`make install`, `make DESTDIR=... install` and uninstall leave nothing
behind."""

import os
import unittest

import harness

DISTCHECK_TIMEOUT = 900


class BuildTest(unittest.TestCase):
    def test_make_distcheck(self):
        build = os.environ.get("TERN_BUILD_DIR") or os.path.join(
            harness.SRC_DIR, "_build")
        if not os.path.exists(os.path.join(build, "Makefile")):
            self.skipTest("no configured build in %s (run ./test.sh)" % build)
        # The distcheck build is not sanitized; sanitizer settings from the
        # runner would only confuse its tools.
        env = {k: v for k, v in os.environ.items()
               if not k.endswith("SAN_OPTIONS")}
        res = harness.run(["make", "-j2", "-C", build, "distcheck"],
                          timeout=DISTCHECK_TIMEOUT, check=False, env=env)
        tail = "\n".join(res.output.splitlines()[-40:])
        self.assertEqual(res.returncode, 0, tail)
        self.assertIn("archives ready for distribution", res.stdout, tail)


if __name__ == "__main__":
    unittest.main()
