#!/usr/bin/env python3
"""Checks that every command the project's scripts call will be there on a
bare Debian 12: installed by .ci/install-deps.sh, part of the base system a
newcomer has (debootstrap minbase, plus git and make), a shell builtin or
function, or provided by the project itself (built binaries, npm packages
the scripts install into .cache/).

  .ci/check-commands.py [--packages FILE] [--extra SCRIPT] [--verbose]

--packages reads the package list from FILE instead of install-deps.sh;
--extra checks one more script (the suite's own tests use both).

It reads the shell scripts (test/, bench/, dags/, .ci/: every tracked *.sh
and bash-shebang file) with bashcalls.py, which finds the programs each
command runs (through wrappers, literal arrays and variables), and adds the Makefile recipes as `make -n -B` prints them
and the interpreters the built programs run (worker/config.c's *_path
defaults).  Each name is resolved in /usr/bin, /usr/sbin, /bin, /sbin (or
as the absolute path it is) and mapped to its Debian package with dpkg -S;
the package must be in the closure (Depends, Pre-Depends; no Recommends, as
install-deps.sh installs with --no-install-recommends) of the base system
and install-deps.sh's list (`install-deps.sh --list`, or --packages FILE).

Prints one line per problem, "script:line: command: why", and exits 1 when
there is any.  Make runs it after install-deps.sh, so every listed package
is installed and resolvable here.
"""
import os
import re
import subprocess
import sys

sys.dont_write_bytecode = True        # no __pycache__ in the checkout
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bashcalls import ARGS, Parser, Resolver  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# What a newcomer's Debian 12 has before anything of ours runs: debootstrap
# --variant=minbase (every Essential or Priority: required package, and apt),
# then git to clone the project and make to run it.
BASE_EXTRA = ['apt', 'git', 'make']

# Commands the project provides itself: built by its Makefiles, installed by
# make install, or installed from npm into .cache/ by the scripts that use
# them (test/lib/anvil.sh); none of them comes from a Debian package.
PROJECT_COMMANDS = {
    'trace-worker', 'trace-rpc-gateway', 'trace-delivery', 'anvil', 'cast',
}

# Commands a script calls only where the README's prerequisites hold.
PREREQUISITES = {
    'sudo': 'install-deps.sh calls it only when not run as root, and the '
            'README asks for root or sudo',
}

def tracked_scripts():
    res = subprocess.run(['git', '-C', ROOT, 'ls-files'], capture_output=True, text=True)
    if res.returncode == 0:
        files = res.stdout.split()
    else:                                      # not a git checkout (a tarball)
        files = [os.path.relpath(os.path.join(d, f), ROOT)
                 for top in ('test', 'bench', 'dags', '.ci')
                 for d, _, fs in os.walk(os.path.join(ROOT, top)) for f in fs
                 if 'node_modules' not in d]
    out = []
    for f in files:
        if not f.startswith(('test/', 'bench/', 'dags/', '.ci/')):
            continue
        path = os.path.join(ROOT, f)
        if not os.path.isfile(path):
            continue
        if f.endswith('.sh'):
            out.append(f)
            continue
        with open(path, 'rb') as fh:
            head = fh.readline()
        if re.match(rb'#!.*\b(bash|sh)\b', head):
            out.append(f)
    return sorted(out)


def makefile_calls(resolver):
    """(where, program) for every recipe line `make -n -B` prints for the
    targets the README names, with the Makefiles' own sub-makes."""
    out = []
    runs = [('.', t) for t in ('all', 'install', 'test', 'bench', 'demo', 'demo-stop', 'deps')]
    runs += [('worker', 'check'), ('bench', 'all')]
    for sub, target in runs:
        res = subprocess.run(['make', '-n', '-B', '-C', os.path.join(ROOT, sub), target],
                             capture_output=True, text=True)
        p = Parser()
        p.functions, p.assigns = resolver.functions, resolver.assigns
        text = '\n'.join(l for l in res.stdout.splitlines()
                         if not re.match(r'make(\[\d+\])?: ', l))
        p.parse_text(text)
        for _, words in p.calls:
            for prog in resolver.programs(words):
                if prog != ARGS:
                    out.append(('%s/Makefile (make -n %s)' % (sub, target), prog))
    return out


def program_defaults():
    """The programs the built binaries run by default (worker/config.c's
    *_path settings)."""
    out = []
    path = os.path.join(ROOT, 'worker', 'config.c')
    if not os.path.exists(path):
        return out
    with open(path) as fh:
        for n, line in enumerate(fh, 1):
            m = re.search(r'\{"(\w+_path)",\s*T_STR,[^"]*"(/[^"]+)"', line)
            if m:
                out.append(('worker/config.c:%d (%s)' % (n, m.group(1)), m.group(2)))
    return out


def path_variants(path):
    """The names dpkg may know a path by: usrmerge aliases (/bin and
    /usr/bin), and the same for the symlink's target (alternatives)."""
    out = []
    for p in (path, os.path.realpath(path)):
        out.append(p)
        for a, b in (('/usr/bin/', '/bin/'), ('/usr/sbin/', '/sbin/')):
            if p.startswith(a):
                out.append(b + p[len(a):])
            elif p.startswith(b):
                out.append(a + p[len(b):])
    return out


def dpkg_owners(paths):
    """path -> the package that ships it (by any of its variants), for
    every path some package ships; one dpkg-query call for all."""
    variants = {p: path_variants(p) for p in paths}
    every = sorted(set(v for vs in variants.values() for v in vs))
    owner = {}
    if every:
        res = subprocess.run(['dpkg-query', '-S'] + every, capture_output=True, text=True)
        for line in res.stdout.splitlines():
            pkg, _, p = line.partition(': ')
            if not pkg.startswith('diversion'):
                owner.setdefault(p.strip(), pkg.split(':')[0].split(',')[0].strip())
    return {p: next((owner[v] for v in vs if v in owner), None) for p, vs in variants.items()}


def installed_packages():
    """package -> (essential, priority, provides, depends) for every
    installed package."""
    fmt = '${Package}\t${Essential}\t${Priority}\t${Provides}\t${Pre-Depends}, ${Depends}\t${db:Status-Abbrev}\n'
    res = subprocess.run(['dpkg-query', '-W', '-f', fmt], capture_output=True,
                         text=True, check=True)
    pkgs = {}
    for line in res.stdout.splitlines():
        name, ess, prio, prov, deps, status = line.split('\t')
        if not status.startswith('ii'):
            continue
        pkgs[name] = (ess == 'yes', prio, prov, deps)
    return pkgs


def closure(roots, pkgs):
    """Every installed package that installing `roots` brings in: Depends
    and Pre-Depends, recursively; for an alternative, the first one that
    is installed here; a virtual package, by its installed providers."""
    providers = {}
    for name, (_, _, prov, _) in pkgs.items():
        for p in prov.split(','):
            p = p.strip().split(' ')[0]
            if p:
                providers.setdefault(p, []).append(name)
    seen = set()
    todo = list(roots)
    while todo:
        p = todo.pop()
        cands = [p] if p in pkgs else providers.get(p, [])
        for c in cands:
            if c in seen:
                continue
            seen.add(c)
            for dep in pkgs[c][3].split(','):
                alts = [a.strip().split(' ')[0].split(':')[0] for a in dep.split('|')]
                alts = [a for a in alts if a]
                for a in alts:
                    if a in pkgs or a in providers:
                        todo.append(a)
                        break
    return seen


def main(argv):
    verbose = '--verbose' in argv
    if '--packages' in argv:
        with open(argv[argv.index('--packages') + 1]) as fh:
            listed = fh.read().split()
    else:
        listed = subprocess.run(['bash', os.path.join(ROOT, '.ci', 'install-deps.sh'), '--list'],
                                capture_output=True, text=True, check=True).stdout.split()
    pkgs = installed_packages()
    base = [p for p, (ess, prio, _, _) in pkgs.items() if ess or prio == 'required'] + BASE_EXTRA
    have = closure(base + listed, pkgs)
    builtins = set(subprocess.run(['bash', '-c', 'compgen -b; compgen -k'], capture_output=True,
                                  text=True).stdout.split())

    # Pass 1: every script's functions and variables (scripts source each
    # other's libraries); pass 2: resolve the calls.
    parsed = []
    functions = set()
    assigns = {}
    scripts = tracked_scripts()
    if '--extra' in argv:
        scripts.append(argv[argv.index('--extra') + 1])
    for f in scripts:
        p = Parser()
        p.functions, p.assigns = functions, assigns
        with open(os.path.join(ROOT, f), encoding='utf-8', errors='replace') as fh:
            p.parse_text(fh.read())
        parsed.append((f, p))
    resolver = Resolver(assigns, functions)
    resolver.learn_arg_runners(r for _, p in parsed for r in p.arg_runners)
    uses = []                                  # (where, program)
    for f, p in parsed:
        for line, words in p.calls:
            for prog in resolver.programs(words):
                if prog != ARGS:
                    uses.append(('%s:%d' % (f, line), prog))
    uses += makefile_calls(resolver)
    uses += program_defaults()

    problems = []
    judged = verdicts(set(p for _, p in uses), builtins, functions, have)
    for where, prog in uses:
        ok, why = judged[prog]
        if verbose:
            print('%-48s %-28s %s' % (where, prog, why))
        if not ok:
            problems.append('%s: %s: %s' % (where, prog, why))
    if verbose:
        for word in sorted(resolver.unresolved):
            print('not resolved statically: %s' % word)
    for line in problems:
        print(line)
    checked = len(set(p for _, p in uses))
    print('check-commands: %d commands in %d places; %d problem(s)'
          % (checked, len(uses), len(problems)))
    return 1 if problems else 0


def verdicts(progs, builtins, functions, have):
    """prog -> (ok, why) for every program name or path."""
    out = {}
    paths = {}
    for prog in progs:
        if '/' not in prog:
            if prog in builtins:
                out[prog] = (True, 'bash builtin')
            elif prog in functions:
                out[prog] = (True, 'function')
            elif prog in PROJECT_COMMANDS:
                out[prog] = (True, 'provided by the project')
            elif prog in PREREQUISITES:
                out[prog] = (True, PREREQUISITES[prog])
            else:
                path = next((os.path.join(d, prog) for d in ('/usr/bin', '/usr/sbin', '/bin', '/sbin')
                             if os.path.exists(os.path.join(d, prog))), None)
                if path is None:
                    out[prog] = (False, 'not installed by .ci/install-deps.sh '
                                        '(no Debian package on this machine provides it)')
                else:
                    paths[prog] = path
        elif not os.path.isabs(prog) or prog.startswith(ROOT + '/') \
                or os.path.basename(prog) in PROJECT_COMMANDS:
            out[prog] = (True, 'provided by the project')
        elif not os.path.exists(prog):
            out[prog] = (False, 'not installed by .ci/install-deps.sh (%s does not exist)' % prog)
        else:
            paths[prog] = prog
    owners = dpkg_owners(paths.values())
    for prog, path in paths.items():
        pkg = owners[path]
        if pkg is None:
            out[prog] = (False, '%s belongs to no Debian package' % path)
        elif pkg not in have:
            out[prog] = (False, 'from package %s, which .ci/install-deps.sh does not install '
                                '(nor the base system)' % pkg)
        else:
            out[prog] = (True, 'package %s' % pkg)
    return out


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
