"""Measuring the original Whistler's XDP/TC programs through our compiler (``bench/original_programs.py``).

``lisp`` reads Common Lisp source tolerantly; ``programs`` compiles and loads each program once
(``Kernel``); ``examples`` finds the original's example programs and checks their behaviour;
``testlisp`` interprets the original's FiveAM tests with their compile functions backed by our
compiler. Needs the repository root on ``sys.path`` (for ``compiler`` and ``tests.kernel``).
"""
