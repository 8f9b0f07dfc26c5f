"""propalign_book: the kit that builds the book, beside the library.

The library, :mod:`propalign_lite`, is the method (datasets, classifiers, matchers, couplings,
metrics, trainer, baselines, ``align``) and never imports this package (a test checks the
import graph). This kit holds what only the book needs:

* :mod:`~propalign_book.profiles` -- the settings of every chapter (``ci``, ``paper``);
* :mod:`~propalign_book.experiments` -- the units of work, ``unit(settings, seed) -> record``;
* :mod:`~propalign_book.runner`, :mod:`~propalign_book.store`,
  :mod:`~propalign_book.recorded`, :mod:`~propalign_book.run` -- running units (in process or
  on a Dask cluster), the results store and recorded runs, the command line;
* :mod:`~propalign_book.paper`, :mod:`~propalign_book.report`, :mod:`~propalign_book.plots` --
  the paper's numbers, tables and figures of the chapters;
* :mod:`~propalign_book.book` -- the papermill driver (``python -m propalign_book.book``);
* :mod:`~propalign_book.ot_benchmark` -- the OT benchmark harness of the Performance page.
"""
