# Inference Lab: the front door. Every target sets up .venv first, so any of them can be the first
# command on a fresh machine.
#
#   make setup                              create .venv and install the course (nothing else)
#   make grade PHASE=1                      grade your code (phase1_basics/starter/)
#   make grade PHASE=2 PART=quantization    grade one part of a phase (phase2_optimization/quantization/starter/)
#   make grade PHASE=1 TASK=2               only the criteria of task 1.2
#   make test-task PHASE=1 TASK=2           the unit tests of task 1.2
#   make test                               the whole test suite (CI runs this)
#   make grade PHASE=2 SUBMISSION=path      grade another copy of the repo (an instructor's view)
#   make grade PHASE=1 IMPL=reference       prove the thresholds reachable (instructors, CI)
#   make gradebook PHASE=1 SUBMISSIONS=dir  grade every learner copy in dir into a gradebook.csv
#   make stability PHASE=1 TIMES=5          grade the reference 5 times: are the verdicts steady?
#   make release DEST=path                  write the learner copy, without reference solutions
#   make starters / make outcomes           regenerate every starter/ and every thresholds table
#   make lint                               ruff over the repo (CI runs it too)

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

PHASE      ?= 1
PART       ?=
IMPL       ?= starter
SUBMISSION ?=
PROFILE    ?=
QUICK      ?=
TASK       ?=
OUT        ?=
DEST       ?=

GRADE_ARGS := --phase $(PHASE) --impl $(IMPL) \
	$(if $(PART),--part $(PART)) \
	$(if $(SUBMISSION),--submission $(SUBMISSION)) \
	$(if $(PROFILE),--profile $(PROFILE)) \
	$(if $(filter 1 yes true,$(QUICK)),--quick) \
	$(if $(TASK),--task $(TASK)) \
	$(if $(OUT),--out $(OUT))

TIMES      ?= 5
SUBMISSIONS ?=

.PHONY: setup grade gradebook stability test test-fast test-task lint starters outcomes data models release \
	fingerprint clean help

help:
	@sed -n '4,16p' Makefile | sed 's/^# //; s/^#//'

setup: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Inference Lab needs Python 3.11 or newer")'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

grade: $(STAMP)
	$(PY) -m graders grade $(GRADE_ARGS)

gradebook: $(STAMP)
	@test -n "$(SUBMISSIONS)" || { echo "usage: make gradebook PHASE=1 SUBMISSIONS=path/to/folder"; exit 2; }
	$(PY) -m graders batch --phase $(PHASE) $(if $(PART),--part $(PART)) --submissions $(SUBMISSIONS) \
		$(if $(OUT),--out $(OUT)) \
		$(if $(filter 1 yes true,$(QUICK)),--quick) $(if $(TASK),--task $(TASK))

stability: $(STAMP)
	$(PY) -m graders stability --phase $(PHASE) $(if $(PART),--part $(PART)) --impl $(if $(filter command line environment,$(origin IMPL)),$(IMPL),reference) --times $(TIMES) \
		$(if $(filter 1 yes true,$(QUICK)),--quick) $(if $(PROFILE),--profile $(PROFILE))

data: $(STAMP)
	$(PY) -m labdata.generate

models: $(STAMP)
	$(PY) -m labdata.train --all

test: $(STAMP) models
	$(PY) -m pytest

test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow"

# The unit tests of one task, in the part's tests folder (tests/phase1, tests/phase2_quantization, ...).
test-task: $(STAMP)
	@test -n "$(TASK)" || { echo "usage: make test-task PHASE=1 TASK=2"; exit 2; }
	$(PY) -m pytest -m "phase$(PHASE)_task$(TASK) and not slow" \
		$$($(PY) -c 'from graders.course import phase; print(phase($(PHASE)).part_of_task($(TASK)).tests_dir)')

lint: $(STAMP)
	$(PY) -m ruff check .

starters: $(STAMP)
	$(PY) -m graders starters

outcomes: $(STAMP)
	$(PY) -m graders outcomes

release: $(STAMP)
	@test -n "$(DEST)" || { echo "usage: make release DEST=path/to/learner-copy"; exit 2; }
	$(PY) -m graders release --dest $(DEST)

fingerprint: $(STAMP)
	$(PY) -m graders fingerprint

clean:
	rm -rf grades .pytest_cache .benchmarks
