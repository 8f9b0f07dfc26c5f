# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Execution status
#
# Every chapter of this book, a reproduction of {cite:t}`xi2024propensity`, was executed by papermill, from its source in `book/`, right
# before the HTML was rendered. The table shows when each page was last executed, with which
# profile and how long it took. It also shows the software and the machine. A chapter whose
# execution failed stops the build, so no page is rendered from a failed run.

# %% tags=["parameters"]
profile = "ci"

# %% tags=["hide-input"]
import json
import os
import platform
from importlib.metadata import version
from pathlib import Path

import pandas as pd
from IPython.display import display

timings = json.loads(Path("_timings.json").read_text()) if Path("_timings.json").exists() else {}
rows = [{"page": k.removeprefix("book/"), "profile": v["profile"], "seconds": v["seconds"],
         "threads": v.get("threads", "-"), "chapters beside it": v.get("beside", 0),
         "executed (UTC)": v["finished"]}
        for k, v in timings.items() if not k.endswith("status")]
display(pd.DataFrame(rows).set_index("page") if rows else "no timings recorded")
if rows:
    print(f"total execution time of the chapters: {sum(r['seconds'] for r in rows):.0f} s")
    if any(r["chapters beside it"] for r in rows):
        print("chapters with others beside them ran at the same time (python -m "
              "propalign_book.book --jobs), each kernel with the threads shown: their seconds "
              "overlap and include the sharing of the CPUs")

# %% [markdown]
# ## The records each page shows
#
# A chapter's heavy work is a set of experiment units whose results (records) are kept in a
# results store. For every chapter, the table counts the records the page showed, and says
# whether each was computed in this build, read from the store (computed by an earlier build or
# a cluster run) or taken from a recorded run committed with the book, and on which machine it
# was computed ("this machine" is the one that built this book; a GPU, when one was used, is
# named). A page that shows no stored records has 0.

# %% tags=["hide-input"]
from propalign_book.report import records_table

records = records_table({k: v for k, v in timings.items() if not k.endswith("status")})
display(records if records is not None else
        "no records information (the chapters were executed before it was collected)")

# %% tags=["hide-input"]
packages = ["torch", "numpy", "scipy", "scikit-learn", "pot", "pandas", "anndata", "scanpy",
            "pygame", "matplotlib", "papermill", "jupytext", "jupyter-book"]
print(f"Python {platform.python_version()} on {platform.platform()}, "
      f"{os.cpu_count()} CPU(s)")
display(pd.DataFrame({"version": {p: version(p) for p in packages}}))

# %% [markdown]
# ## References
#
# ```{bibliography}
# :filter: docname in docnames
# ```
