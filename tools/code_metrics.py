#!/usr/bin/env python3
"""
Print the longest functions, the largest files and the import cycles of the project.

  python3 tools/code_metrics.py [--top 15] [--max-lines 60] [ROOT]

Functions are measured from their ``def`` line to their last line (docstring included, nested
functions counted in their parent too). Import cycles are strongly connected components of the
graph of imports between the project's own modules (``hand_tracker_ros``,
``hand_tracker_training``), imports inside functions included: a function-level import that
dodges a cycle is still a cycle.
"""
from __future__ import annotations

import argparse
import ast
from pathlib import Path
import sys


PACKAGES = ('hand_tracker_ros', 'hand_tracker_training')
FOLDERS = PACKAGES + ('launch', 'benchmarks', 'test', 'tools')


def python_files(root: Path) -> list[Path]:
    """Return the project's Python files under the FOLDERS of `root`."""
    files = []
    for folder in FOLDERS:
        files += sorted((root / folder).rglob('*.py'))
    return [f for f in files if '__pycache__' not in f.parts]


def functions(tree: ast.AST) -> list[tuple[str, int, int]]:
    """(qualified name, first line, number of lines) of every function in `tree`."""
    out = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = prefix + child.name
                out.append((name, child.lineno, child.end_lineno - child.lineno + 1))
                visit(child, name + '.')
            elif isinstance(child, ast.ClassDef):
                visit(child, prefix + child.name + '.')
            else:
                visit(child, prefix)

    visit(tree, '')
    return out


def module_name(root: Path, path: Path) -> str:
    """Dotted module name of a package file (``pkg.mod``; ``pkg`` for ``__init__``)."""
    parts = list(path.relative_to(root).with_suffix('').parts)
    if parts[-1] == '__init__':
        parts.pop()
    return '.'.join(parts)


def imports_of(tree: ast.AST, module: str, is_package: bool) -> set[str]:
    """Return the project modules imported anywhere in `tree` (relative imports resolved)."""
    found = set()
    base = module.split('.') if is_package else module.split('.')[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                pkg = base[:len(base) - node.level + 1]
                target = '.'.join(pkg + ([node.module] if node.module else []))
            else:
                target = node.module or ''
            found.add(target)
            found |= {f'{target}.{a.name}' for a in node.names}
    return {m for m in found if m.split('.')[0] in PACKAGES}


def import_graph(root: Path) -> dict[str, set[str]]:
    """Return {module: project modules it imports} of the project's packages."""
    files = {}
    for pkg in PACKAGES:
        for path in sorted((root / pkg).rglob('*.py')):
            files[module_name(root, path)] = path
    graph = {}
    for name, path in files.items():
        tree = ast.parse(path.read_text(), str(path))
        targets = imports_of(tree, name, path.name == '__init__.py')
        graph[name] = {t for t in targets if t in files and t != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), sorted."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def strongconnect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            strongconnect(v)
    return sorted(out)


def main(argv=None) -> int:
    """Print the three reports; the exit status is 0."""
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('root', nargs='?', type=Path, default=Path(__file__).resolve().parents[1])
    ap.add_argument('--top', type=int, default=15, help='rows per list (default 15)')
    ap.add_argument('--max-lines', type=int, default=60,
                    help='count the functions longer than this (default 60)')
    a = ap.parse_args(argv)
    rows, sizes = [], []
    for path in python_files(a.root):
        text = path.read_text()
        rel = path.relative_to(a.root)
        sizes.append((len(text.splitlines()), str(rel)))
        for name, line, n in functions(ast.parse(text, str(path))):
            rows.append((n, f'{rel}:{line}', name))
    rows.sort(reverse=True)
    long = [r for r in rows if r[0] > a.max_lines]
    print(f'== longest functions ({len(long)} longer than {a.max_lines} lines, '
          f'{len(rows)} in all)')
    for n, where, name in rows[:a.top]:
        print(f'{n:5d}  {name}  ({where})')
    print(f'== largest files ({len(sizes)} files, {sum(s[0] for s in sizes)} lines)')
    for n, rel in sorted(sizes, reverse=True)[:a.top]:
        print(f'{n:5d}  {rel}')
    found = cycles(import_graph(a.root))
    print(f'== import cycles between project modules: {len(found)}')
    for component in found:
        print('   ' + ' <-> '.join(component))
    return 0


if __name__ == '__main__':
    sys.exit(main())
