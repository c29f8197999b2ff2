"""The commands a bash script runs, found without running it (used by
.ci/check-commands.py).

A small bash lexer that knows quotes, comments, here-documents, command and
process substitution, arrays, case clauses, [[ ]] and (( )); a parser that
finds each simple command's words, the functions defined and the variables
assigned; and a resolver that turns a command's words into the programs it
runs, looking through wrappers (runuser, sudo, env, timeout, exec, xargs,
bash -c '...'), literal arrays and variables ("${AS_PG[@]}", $sudo,
"$PG_BIN/psql") and functions that run their arguments (check NAME CMD...).
What cannot be known statically is skipped and listed in
Resolver.unresolved.
"""
import os
import re
import subprocess


# Wrappers that run a command given after their options, with the options
# that take an argument (the others are flags; '--' ends the options).
WRAPPERS = {
    'sudo': {'-u': True, '-g': True, '-C': True, '-D': True, '-h': True},
    'runuser': {'-u': True, '-g': True, '-G': True, '-s': True, '-w': True},
    'exec': {'-a': True},
    'command': {},
    'builtin': {},
    'nohup': {},
    'setsid': {},
    'nice': {'-n': True},
    'stdbuf': {'-i': True, '-o': True, '-e': True},
    'env': {'-u': True, '-C': True, '-S': True},
    'timeout': {'-s': True, '-k': True},
    'xargs': {'-I': True, '-n': True, '-P': True, '-d': True, '-L': True,
              '-s': True, '-a': True, '-E': True},
    'time': {},
    'flock': {'-w': True, '-E': True},
    'unshare': {},
    'taskset': {},
}
# Wrappers whose first non-option word is an argument, not the command.
WRAPPER_ARGS = {'timeout': 1, 'taskset': 1, 'flock': 1}

RESERVED_START = {'if', 'then', 'else', 'elif', 'do', 'while', 'until', '!',
                  '{', 'time', 'in'}
RESERVED_END = {'fi', 'done', '}', 'esac'}
DECLARERS = {'local', 'export', 'declare', 'readonly', 'typeset'}
ASSIGN = re.compile(r'^[A-Za-z_][A-Za-z0-9_]*(\[[^]]*\])?\+?=')
ARGS = '"$@"'           # a function's arguments, run as a command


class Lexer:
    """Splits bash text into words and operators.  Each word is kept raw
    (quotes and all); command substitutions found anywhere (in words, in
    double quotes, in unquoted here-documents) are lexed and parsed on the
    spot and their commands appended to `self.parser`."""

    OPS = ['&&', '||', ';;&', ';;', ';&', '|&', '&>>', '&>', '>>', '>|',
           '<<<', '<<-', '<<', '<>', '>&', '<&', ';', '&', '|', '(', ')',
           '<', '>', '\n']
    REDIRS = {'&>>', '&>', '>>', '>|', '<<<', '<>', '>&', '<&', '<', '>'}

    def __init__(self, text, parser):
        self.s = text
        self.parser = parser
        self.heredocs = []      # (terminator, strip_tabs, quoted) awaiting a newline

    def line_at(self, pos):
        return self.s.count('\n', 0, pos) + 1

    def tokens(self, pos, stop_at_paren=False):
        """Lexes from pos; returns (tokens, end).  With stop_at_paren it
        stops at the ')' that closes a command substitution, and end is
        just past it."""
        out = []
        depth = 0
        s = self.s
        n = len(s)
        while pos < n:
            c = s[pos]
            if c in ' \t':
                pos += 1
                continue
            if c == '\\' and pos + 1 < n and s[pos + 1] == '\n':
                pos += 2
                continue
            if c == '#':
                while pos < n and s[pos] != '\n':
                    pos += 1
                continue
            if c == '\n':
                out.append(('op', '\n', self.line_at(pos)))
                pos += 1
                pos = self.read_heredocs(pos)
                continue
            if s.startswith('((', pos):
                pos = self.skip_parens(pos)      # arithmetic: no commands
                continue
            if c in '<>' and pos + 1 < n and s[pos + 1] == '(':
                pos = self.substitution(pos + 2)  # process substitution
                continue
            if c == ')' and stop_at_paren and depth == 0:
                return out, pos + 1
            op = next((o for o in self.OPS if s.startswith(o, pos)), None)
            if op is not None and op != '\n':
                if op == '(':
                    depth += 1
                elif op == ')':
                    depth -= 1
                line = self.line_at(pos)
                pos += len(op)
                if op in ('<<', '<<-'):
                    while pos < n and s[pos] in ' \t':
                        pos += 1
                    word, pos = self.word(pos)
                    quoted = any(q in word for q in '\'"\\')
                    term = re.sub(r'[\'"\\]', '', word)
                    self.heredocs.append((term, op == '<<-', quoted))
                    out.append(('redir', op, line))
                    continue
                out.append(('redir' if op in self.REDIRS else 'op', op, line))
                continue
            line = self.line_at(pos)
            start = pos
            word, pos = self.word(pos)
            # fd-prefixed redirections: 2>, 2>&1, 3<>
            if re.fullmatch(r'[0-9]+', word) and pos < n and s[pos] in '<>':
                continue
            if ASSIGN.match(word) and word.endswith('=') and pos < n and s[pos] == '(':
                elems, pos = self.array(pos + 1)
                out.append(('array', (word[:-1].rstrip('+'), elems), line))
                continue
            out.append(('word', word, line))
            assert pos > start
        return out, pos

    def word(self, pos):
        """Reads one word at pos; returns (raw text, end)."""
        s = self.s
        n = len(s)
        start = pos
        while pos < n:
            c = s[pos]
            if c in ' \t\n;&|()<>':
                break
            if c == '\\':
                pos += 2
            elif c == "'":
                end = s.find("'", pos + 1)
                pos = n if end < 0 else end + 1
            elif c == '"':
                pos = self.double_quoted(pos + 1)
            elif c == '`':
                pos = self.backquoted(pos + 1)
            elif c == '$' and s.startswith('$((', pos):
                pos = self.skip_parens(pos + 1)
            elif c == '$' and s.startswith('$(', pos):
                pos = self.substitution(pos + 2)
            elif c == '$' and s.startswith('${', pos):
                pos = self.braced(pos + 2)
            else:
                pos += 1
        return s[start:pos], pos

    def double_quoted(self, pos):
        s = self.s
        n = len(s)
        while pos < n and s[pos] != '"':
            if s[pos] == '\\':
                pos += 2
            elif s.startswith('$((', pos):
                pos = self.skip_parens(pos + 1)
            elif s.startswith('$(', pos):
                pos = self.substitution(pos + 2)
            elif s.startswith('${', pos):
                pos = self.braced(pos + 2)
            elif s[pos] == '`':
                pos = self.backquoted(pos + 1)
            else:
                pos += 1
        return pos + 1

    def braced(self, pos):
        """Skips a ${...} parameter expansion (nested ones and quotes too)."""
        s = self.s
        depth = 1
        while pos < len(s) and depth:
            if s[pos] == '\\':
                pos += 1
            elif s.startswith('${', pos):
                depth += 1
                pos += 1
            elif s[pos] == '}':
                depth -= 1
            elif s[pos] == "'":
                pos = s.find("'", pos + 1)
                if pos < 0:
                    return len(s)
            elif s[pos] == '"':
                pos = self.double_quoted(pos + 1) - 1
            elif s.startswith('$(', pos) and not s.startswith('$((', pos):
                pos = self.substitution(pos + 2) - 1
            pos += 1
        return pos

    def skip_parens(self, pos):
        """Skips an arithmetic (( ... )) starting at pos."""
        s = self.s
        depth = 0
        while pos < len(s):
            if s[pos] == '(':
                depth += 1
            elif s[pos] == ')':
                depth -= 1
                if depth == 0:
                    return pos + 1
            pos += 1
        return pos

    def substitution(self, pos):
        """Lexes and parses a $( ... ) or <( ... ) body; returns its end."""
        toks, end = self.tokens(pos, stop_at_paren=True)
        self.parser.parse(toks)
        return end

    def backquoted(self, pos):
        end = self.s.find('`', pos)
        end = len(self.s) if end < 0 else end
        self.parser.parse_text(self.s[pos:end], self.line_at(pos) - 1)
        return end + 1

    def array(self, pos):
        """Reads the elements of name=( ... ); returns (words, end)."""
        s = self.s
        elems = []
        while pos < len(s):
            c = s[pos]
            if c in ' \t\n':
                pos += 1
            elif c == ')':
                return elems, pos + 1
            elif c == '#':
                while pos < len(s) and s[pos] != '\n':
                    pos += 1
            else:
                word, pos = self.word(pos)
                if not word:
                    pos += 1
                else:
                    elems.append(word)
        return elems, pos

    def read_heredocs(self, pos):
        """Skips the bodies of the here-documents opened on the line just
        ended; parses command substitutions in the unquoted ones."""
        s = self.s
        while self.heredocs:
            term, strip, quoted = self.heredocs.pop(0)
            while pos < len(s):
                end = s.find('\n', pos)
                end = len(s) if end < 0 else end
                line = s[pos:end]
                if (line.lstrip('\t') if strip else line) == term:
                    pos = end + 1
                    break
                if not quoted:
                    i = line.find('$(')
                    while i >= 0:
                        if not line.startswith('$((', i):
                            self.substitution(pos + i + 2)
                        i = line.find('$(', i + 2)
                pos = end + 1
        return pos


class Parser:
    """Finds simple commands in token streams: `calls` gets
    (line, [words]) for each, `functions` the names defined, `assigns`
    every NAME=value and NAME=(array) seen."""

    def __init__(self, line_offset=0):
        self.calls = []
        self.functions = set()
        self.assigns = {}
        self.line_offset = line_offset
        self.arg_runners = []    # (function, shifts so far, words) for words with "$@"
        self.pending_fn = None   # a function whose body's { comes next
        self.fn_stack = []       # [name, brace depth, shifts] of open bodies
        self.braces = 0

    def parse_text(self, text, line_offset=0):
        sub = Parser(self.line_offset + line_offset)
        sub.functions, sub.assigns = self.functions, self.assigns
        lexer = Lexer(text, sub)
        toks, _ = lexer.tokens(0)
        sub.parse(toks)
        self.calls.extend(sub.calls)
        self.arg_runners.extend(sub.arg_runners)

    def assign(self, word):
        """Records NAME=value (NAME+=, NAME[k]= too)."""
        eq = word.index('=')
        name = word[:eq].rstrip('+').split('[')[0]
        self.assigns.setdefault(name, []).append(('scalar', word[eq + 1:]))

    def parse(self, toks):
        i = 0
        start = True             # at the start of a command
        words = []               # the current simple command's words
        line = 0
        case_stack = []          # 'pattern' or 'body' per open case
        skip_to = None           # ']]' or end of a for/select/case header

        def flush():
            if words:
                self.calls.append((line + self.line_offset, list(words)))
                if self.fn_stack:
                    fn = self.fn_stack[-1]
                    if words[0] == 'shift':
                        fn[2] += int(words[1]) if len(words) > 1 and words[1].isdigit() else 1
                    elif '"$@"' in words:
                        self.arg_runners.append((fn[0], fn[2], list(words)))
            words.clear()

        while i < len(toks):
            kind, val, ln = toks[i]
            i += 1
            if skip_to is not None:
                if kind == 'word' and val == skip_to or \
                        skip_to == 'eol' and kind == 'op' and val in (';', '\n'):
                    if skip_to == 'in':
                        case_stack.append('pattern')
                    skip_to = None
                    start = True
                continue
            if case_stack and case_stack[-1] == 'pattern':
                if kind == 'word' and val == 'esac':
                    case_stack.pop()
                    start = False
                elif kind == 'op' and val == ')':
                    case_stack[-1] = 'body'
                    start = True
                continue
            if kind == 'op':
                if val in (';;', ';&', ';;&') and case_stack:
                    flush()
                    case_stack[-1] = 'pattern'
                    continue
                if val == '(' and words and len(words) == 1 and i < len(toks) \
                        and toks[i][1] == ')':
                    self.functions.add(words[0])   # name() { ... }
                    self.pending_fn = words[0]
                    words.clear()
                    i += 1
                    start = True
                    continue
                flush()
                start = True
                continue
            if kind == 'redir':
                if val not in ('<<', '<<-') and i < len(toks) and toks[i][0] == 'word':
                    i += 1           # the redirection's target
                continue
            if kind == 'array':
                name, elems = val
                self.assigns.setdefault(name, []).append(('array', elems))
                continue
            # a word
            if start and not words:
                if val == '{':
                    self.braces += 1
                    if self.pending_fn:
                        self.fn_stack.append([self.pending_fn, self.braces, 0])
                        self.pending_fn = None
                if val == '}':
                    if self.fn_stack and self.fn_stack[-1][1] == self.braces:
                        self.fn_stack.pop()
                    self.braces -= 1
                if val in RESERVED_START:
                    continue
                if val in RESERVED_END:
                    if val == 'esac' and case_stack:
                        case_stack.pop()
                    start = False
                    continue
                if val == '[[':
                    skip_to = ']]'
                    continue
                if val in ('for', 'select'):
                    skip_to = 'eol'
                    continue
                if val == 'case':
                    skip_to = 'in'
                    continue
                if val == 'function':
                    if i < len(toks) and toks[i][0] == 'word':
                        self.functions.add(toks[i][1])
                        self.pending_fn = toks[i][1]
                        i += 1
                    continue
                if ASSIGN.match(val):
                    self.assign(val)
                    continue
                line = ln
            elif words and words[0] in DECLARERS and ASSIGN.match(val):
                self.assign(val)
            words.append(val)
        flush()


def unquote(word):
    """A word's literal text when it has no expansions, else None."""
    if '$' in word or '`' in word:
        return None
    out = []
    i = 0
    while i < len(word):
        c = word[i]
        if c == "'":
            j = word.find("'", i + 1)
            out.append(word[i + 1:j])
            i = j + 1
        elif c == '"':
            j = i + 1
            while word[j] != '"':
                if word[j] == '\\':
                    j += 1
                out.append(word[j])
                j += 1
            i = j + 1
        elif c == '\\':
            out.append(word[i + 1:i + 2])
            i += 2
        else:
            out.append(c)
            i += 1
    return ''.join(out)


class Resolver:
    """Turns a simple command's words into the external programs it runs."""

    def __init__(self, assigns, functions):
        self.assigns = assigns
        self.functions = functions
        self.pg_answers = {}
        self.unresolved = set()
        self.arg_runners = {}    # function -> arguments it skips before running the rest

    def learn_arg_runners(self, records):
        """Functions that run their arguments as a command (check NAME CMD...,
        as_pg CMD...): how many arguments each shifts off first."""
        for fn, shifts, words in records:
            if ARGS in self.programs(words):
                self.arg_runners[fn] = shifts

    def var_values(self, name):
        """The literal values a variable may hold (a list of word lists),
        or None when one of its assignments is not literal."""
        vals = []
        for kind, v in self.assigns.get(name, []):
            if kind == 'array':
                vals.append(v)
                continue
            m = re.fullmatch(r'"?\$\{[A-Za-z_0-9]+:-(.*)\}"?', v)
            if m:
                v = m.group(1)           # ${X:-default}: the default
            m = re.fullmatch(r'"?\$\((/\S*pg_config) (--[a-z]+)\)([^$"]*)"?', v)
            if m:                        # $(pg_config --bindir)/...: ask it
                vals.append([self.pg_config(m.group(1), m.group(2)) + m.group(3)])
                continue
            m = re.fullmatch(r'"?\$\(command -v (\S+)( \|\| .*)?\)"?', v)
            if m:                        # $(command -v X || ...): X
                vals.append([m.group(1)])
                continue
            lit = unquote(v)
            if lit is None:
                return None
            vals.append(lit.split())
        return vals or None

    def pg_config(self, path, option):
        key = (path, option)
        if key not in self.pg_answers:
            self.pg_answers[key] = subprocess.run(
                [path, option], capture_output=True, text=True).stdout.strip()
        return self.pg_answers[key]

    def expand(self, word):
        """The raw word lists an expansion used as a command may stand for;
        [] when that cannot be known statically (the word is then recorded
        in `unresolved`)."""
        m = re.fullmatch(r'"?\$\{?([A-Za-z_][A-Za-z0-9_]*)(\[@\])?\}?"?', word)
        if m:
            vals = self.var_values(m.group(1))
            if vals is not None:
                return vals
        m = re.fullmatch(r'"?\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?(/[^$`"]*)"?', word)
        if m:
            vals = self.var_values(m.group(1))
            if vals is not None and all(len(v) == 1 for v in vals):
                return [[v[0] + m.group(2)] for v in vals]
        self.unresolved.add(word)
        return []

    def programs(self, words, depth=0):
        """Yields the program names and paths these raw words run."""
        if not words or depth > 6:
            return
        name = unquote(words[0])
        rest = words[1:]
        if words[0] == ARGS:
            yield ARGS
            return
        if name is None:
            for exp in self.expand(words[0]):
                yield from self.programs(exp + rest, depth + 1)
            return
        if name in self.functions and '/' not in name:
            if name in self.arg_runners:
                yield from self.programs(rest[self.arg_runners[name]:], depth + 1)
            return
        if name == 'command' and rest and rest[0] in ('-v', '-V'):
            return                             # a query, not a call
        yield name
        if name in ('bash', 'sh') and len(rest) >= 2 and rest[0] == '-c':
            script = unquote(rest[1])
            if script is not None:
                p = Parser()
                p.functions, p.assigns = self.functions, self.assigns
                p.parse_text(script)
                for _, w in p.calls:
                    yield from self.programs(w, depth + 1)
            return
        base = os.path.basename(name)
        if base not in WRAPPERS:
            return
        if base == 'runuser' and '-c' in rest:
            return                             # runs a shell string
        opts = WRAPPERS[base]
        args_left = WRAPPER_ARGS.get(base, 0)
        j = 0
        while j < len(rest):
            if base == 'env' and ASSIGN.match(rest[j]):
                j += 1
                continue
            w = unquote(rest[j])
            if w is None:
                break
            if w == '--':
                j += 1
                break
            if w.startswith('-') and len(w) > 1:
                j += 2 if opts.get(w) else 1
                continue
            if args_left:
                args_left -= 1
                j += 1
                continue
            break
        yield from self.programs(rest[j:], depth + 1)
