"""How long a test waits for a state before it gives up: one number for the suite.

Tests wait on states (a process exits, a message arrives, a selector appears), never on
time. A wait still needs a bound so that a broken build fails instead of hanging; this is
that bound, sized for a loaded 2-core machine, where a new Python process importing torch
or a kernel fitting probes takes minutes rather than seconds. A passing test never waits
this long: it only bounds how long a failing one takes to say so.
"""

PATIENCE_S = 900
PATIENCE_MS = PATIENCE_S * 1000

# "Fails fast instead of hanging": well above the library's own network timeouts (5 s)
# and what a loaded machine adds to them, far below a hang (minutes, or forever).
FAILS_FAST_S = 60
