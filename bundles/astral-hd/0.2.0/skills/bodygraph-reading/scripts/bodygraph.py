#!/usr/bin/env python3
"""bodygraph.py - Human Design bodygraph arithmetic, standard library only.

usage:
  bodygraph.py gate LONGITUDE [LONGITUDE ...]
      Tropical ecliptic longitude (degrees) -> gate.line on the Rave Mandala.
  bodygraph.py chart [--json] [--personality-sun G.L] [--design-sun G.L] GATE[.LINE] ...
      Activated gates (all 26 activations, Personality and Design) -> defined channels,
      defined and open centres, type, strategy, authority, definition and profile.

Exit codes: 0 ok, 2 bad input. Positions are never estimated here: compute the 26
longitudes with an ephemeris first (see references/centers-gates-channels.md).
"""
import json
import sys

# Gates around the wheel, starting with gate 41 at 302 deg (2 deg Aquarius); each gate
# spans 5.625 deg, each of its six lines 0.9375 deg.
WHEEL = [41, 19, 13, 49, 30, 55, 37, 63, 22, 36, 25, 17, 21, 51, 42, 3,
         27, 24, 2, 23, 8, 20, 16, 35, 45, 12, 15, 52, 39, 53, 62, 56,
         31, 33, 7, 4, 29, 59, 40, 64, 47, 6, 46, 18, 48, 57, 32, 50,
         28, 44, 1, 43, 14, 34, 9, 5, 26, 11, 10, 58, 38, 54, 61, 60]
WHEEL_START = 302.0
GATE_SPAN = 360.0 / 64
LINE_SPAN = GATE_SPAN / 6

CENTERS = {
    "Head": [64, 61, 63],
    "Ajna": [47, 24, 4, 17, 43, 11],
    "Throat": [62, 23, 56, 35, 12, 45, 33, 8, 31, 20, 16],
    "G": [7, 1, 13, 10, 25, 15, 46, 2],
    "Heart": [21, 40, 26, 51],
    "Sacral": [34, 5, 14, 29, 59, 9, 3, 42, 27],
    "Solar Plexus": [36, 22, 37, 6, 49, 55, 30],
    "Spleen": [48, 57, 44, 50, 32, 28, 18],
    "Root": [58, 38, 54, 53, 60, 52, 19, 39, 41],
}
GATE_CENTER = {g: c for c, gates in CENTERS.items() for g in gates}
MOTORS = {"Sacral", "Solar Plexus", "Heart", "Root"}

CHANNELS = [
    (1, 8), (2, 14), (3, 60), (4, 63), (5, 15), (6, 59), (7, 31), (9, 52), (10, 20),
    (10, 34), (10, 57), (11, 56), (12, 22), (13, 33), (16, 48), (17, 62), (18, 58),
    (19, 49), (20, 34), (20, 57), (21, 45), (23, 43), (24, 61), (25, 51), (26, 44),
    (27, 50), (28, 38), (29, 46), (30, 41), (32, 54), (34, 57), (35, 36), (37, 40),
    (39, 55), (42, 53), (47, 64),
]

STRATEGY = {
    "Generator": "wait to respond",
    "Manifesting Generator": "wait to respond, then inform",
    "Manifestor": "inform before acting",
    "Projector": "wait for the invitation",
    "Reflector": "wait a lunar cycle (about 28 days) before big decisions",
}
PROFILE_NAMES = {1: "Investigator", 2: "Hermit", 3: "Martyr", 4: "Opportunist",
                 5: "Heretic", 6: "Role Model"}


class InputError(Exception):
    pass


def gate_of(longitude):
    """Return (gate, line) for a tropical longitude in degrees."""
    offset = (longitude - WHEEL_START) % 360.0
    index = int(offset // GATE_SPAN)
    line = int((offset - index * GATE_SPAN) // LINE_SPAN) + 1
    return WHEEL[index], min(line, 6)


def parse_activation(token):
    gate, _, line = token.partition(".")
    try:
        g = int(gate)
        l = int(line) if line else None
    except ValueError:
        raise InputError(f"bad activation {token!r}: want GATE or GATE.LINE, e.g. 25 or 25.3")
    if not 1 <= g <= 64 or (l is not None and not 1 <= l <= 6):
        raise InputError(f"bad activation {token!r}: gates are 1-64, lines 1-6")
    return g, l


def components(centers, channels):
    """Groups of defined centres connected through defined channels."""
    parent = {c: c for c in centers}

    def find(c):
        while parent[c] != c:
            parent[c] = parent[parent[c]]
            c = parent[c]
        return c

    for a, b in channels:
        parent[find(GATE_CENTER[a])] = find(GATE_CENTER[b])
    groups = {}
    for c in centers:
        groups.setdefault(find(c), set()).add(c)
    return list(groups.values())


def analyse(gates, personality_sun=None, design_sun=None):
    active = set(gates)
    channels = [ch for ch in CHANNELS if ch[0] in active and ch[1] in active]
    defined = {GATE_CENTER[g] for ch in channels for g in ch}
    groups = components(defined, channels)
    throat_group = next((g for g in groups if "Throat" in g), set())
    motor_to_throat = bool(throat_group & MOTORS)

    if not defined:
        kind = "Reflector"
    elif "Sacral" in defined:
        kind = "Manifesting Generator" if motor_to_throat else "Generator"
    elif motor_to_throat:
        kind = "Manifestor"
    else:
        kind = "Projector"

    if kind == "Reflector":
        authority = "Lunar"
    elif "Solar Plexus" in defined:
        authority = "Emotional (Solar Plexus)"
    elif "Sacral" in defined:
        authority = "Sacral"
    elif "Spleen" in defined:
        authority = "Splenic"
    elif "Heart" in defined:
        authority = "Ego manifested" if "Heart" in throat_group else "Ego projected"
    elif "G" in defined:
        authority = "Self-projected"
    else:
        authority = "Mental / environmental (no inner authority)"

    definition = {0: "none", 1: "single", 2: "split", 3: "triple split",
                  4: "quadruple split"}[len(groups)]
    result = {
        "type": kind,
        "strategy": STRATEGY[kind],
        "authority": authority,
        "definition": definition,
        "defined_channels": [f"{a}-{b}" for a, b in channels],
        "defined_centers": [c for c in CENTERS if c in defined],
        "open_centers": [c for c in CENTERS if c not in defined],
        "hanging_gates": sorted(g for g in active if not any(g in ch for ch in channels)),
    }
    if personality_sun and design_sun:
        p, d = personality_sun[1], design_sun[1]
        if p is None or d is None:
            raise InputError("--personality-sun and --design-sun need GATE.LINE")
        result["profile"] = f"{p}/{d} {PROFILE_NAMES[p]} / {PROFILE_NAMES[d]}"
    return result


def main(argv):
    if not argv or argv[0] not in ("gate", "chart"):
        raise InputError(__doc__.strip().split("\n\n")[1])
    cmd, args = argv[0], argv[1:]
    if cmd == "gate":
        if not args:
            raise InputError("gate: give at least one longitude in degrees")
        for a in args:
            try:
                lon = float(a)
            except ValueError:
                raise InputError(f"bad longitude {a!r}: want degrees, e.g. 123.45")
            g, l = gate_of(lon)
            print(f"{lon % 360:.4f} -> {g}.{l}")
        return
    as_json, psun, dsun, gates = False, None, None, []
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--json":
            as_json = True
        elif a in ("--personality-sun", "--design-sun"):
            if i + 1 == len(args):
                raise InputError(f"{a} needs GATE.LINE")
            act = parse_activation(args[i + 1])
            gates.append(act[0])
            if a == "--personality-sun":
                psun = act
            else:
                dsun = act
            i += 1
        else:
            gates.append(parse_activation(a)[0])
        i += 1
    if not gates:
        raise InputError("chart: give the activated gates, e.g. 25.3 51.1 10.4")
    result = analyse(gates, psun, dsun)
    if as_json:
        print(json.dumps(result, indent=2))
        return
    for key, value in result.items():
        if isinstance(value, list):
            value = ", ".join(str(v) for v in value) or "-"
        print(f"{key.replace('_', ' ')}: {value}")


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except InputError as e:
        print(f"bodygraph: {e}", file=sys.stderr)
        sys.exit(2)
