# Inference Lab: the front door. Every target sets up .venv first, so any of them can be the first
# command on a fresh machine. `make help` prints the `##` lines below: the learner's, and in the
# instructors' copy (the one with reference/ solutions) the instructor's too.
#
## learner: make setup | create .venv and install the course (nothing else)
## learner: make grade PHASE=1 | grade your code (phase1_basics/starter/); make exits 2 on a fail, printing the grader's code
## learner: make grade PHASE=2 PART=quantization | grade one part of a phase (phase2_optimization/quantization/starter/)
## learner: make grade PHASE=1 TASK=2 | only the criteria of task 1.2 (a report of its own under grades/)
## learner: make grade PHASE=3 CRITERION=id | only that criterion, e.g. CRITERION=p3.batching.dispatch
## learner: make test-task PHASE=1 TASK=2 | the unit tests of task 1.2 (.venv/bin/pytest -m phase1_task2 tests/phase1)
## learner: make test-fast | the test suite without the slow tests
## learner: make test | the whole test suite (CI runs this)
## learner: make demo | Phase 4: your video pipeline on two generated clips, outputs in out/ (VIDEOS="a.avi b.avi": on yours)
## learner: make triton | Phase 4: real Triton (nvidia-pytriton) in .venv-triton, from the OS's python3.11: the server part's peer
## learner: make edge-bundle | Phase 4: build your edge bundle into dist/edge (OUT=folder), the folder a device runs as it is
## learner: make data / make models | generate the cached data sets / train the small accuracy models
## learner: make fingerprint | this machine's fingerprint (the hardware profile grading uses)
## learner: make lint | ruff over the repo (CI runs it too)
## learner: make clean | delete grades/ and the test caches
## learner: make help | this list
## instructor: make grade PHASE=2 SUBMISSION=path | grade another copy of the repo (a learner's)
## instructor: make grade PHASE=1 IMPL=reference | prove the thresholds reachable (instructors, CI)
## instructor: make gradebook PHASE=1 SUBMISSIONS=dir | grade every learner copy in dir into a gradebook.csv
## instructor: make stability PHASE=1 TIMES=5 | grade the reference 5 times: are the verdicts steady?
## instructor: make stability PHASE=1 NEIGHBOUR=1 | the same with a busy CPU-bound neighbour on the same cores
## instructor: make release DEST=path | write the learner copy, without reference solutions
## instructor: make gradescope PHASE=1 DEST=x.zip | a Gradescope autograder zip without reference solutions (PART= for one part)
## instructor: make starters / make outcomes | regenerate every starter/ and every thresholds table

PYTHON ?= python3
VENV   ?= .venv
# Real Triton's virtualenv (Phase 4 server): the OS's python3.11, whose libpython3.11.so Triton's Python backend loads.
TRITON_PYTHON ?= /usr/bin/python3.11
TRITON_VENV   := .venv-triton
TRITON_STAMP  := $(TRITON_VENV)/.installed
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

PHASE      ?= 1
PART       ?=
IMPL       ?= starter
SUBMISSION ?=
PROFILE    ?=
QUICK      ?=
TASK       ?=
CRITERION  ?=
OUT        ?=
DEST       ?=

GRADE_ARGS := --phase $(PHASE) --impl $(IMPL) \
	$(if $(PART),--part $(PART)) \
	$(if $(SUBMISSION),--submission $(SUBMISSION)) \
	$(if $(PROFILE),--profile $(PROFILE)) \
	$(if $(filter 1 yes true,$(QUICK)),--quick) \
	$(if $(TASK),--task $(TASK)) \
	$(foreach c,$(CRITERION),--criterion $(c)) \
	$(if $(OUT),--out $(OUT))

TIMES      ?= 5
VIDEOS     ?=
IMPL_ARG   := $(if $(filter command line environment,$(origin IMPL)),--impl $(IMPL))
SUBMISSIONS ?=

.PHONY: demo edge-bundle triton setup grade gradebook stability test test-fast test-task lint starters outcomes data models release \
	gradescope fingerprint clean help

# The learner copy (written by `make release`) has no reference/ folder: its help lists learner commands only.
LEARNER_COPY := $(if $(wildcard phase*/reference phase*/*/reference),,1)
HELP_AUDIENCES := learner $(if $(LEARNER_COPY),,instructor)

help:
	@sep=""; for who in $(HELP_AUDIENCES); do \
		printf "$$sep%s commands:\n" "$$who"; sep="\n"; \
		sed -n "s/^## $$who: //p" $(firstword $(MAKEFILE_LIST)) | awk -F' [|] ' '{ printf "  %-40s %s\n", $$1, $$2 }'; \
	done

setup: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Inference Lab needs Python 3.11 or newer")'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev,edge,server,vendor]"
	@touch $(STAMP)

# GNU make exits 2 whenever a recipe fails, whatever the recipe's own code: the grader's code (0 every
# required criterion passed, 1 one failed or stayed inconclusive, 2 the grader could not run) is printed
# before make fails. `$(PY) -m graders grade ...` returns it as it is.
grade: $(STAMP)
	@echo '$(PY) -m graders grade $(strip $(GRADE_ARGS))'
	@$(PY) -m graders grade $(GRADE_ARGS); code=$$?; case $$code in \
		0) ;; \
		1) echo "grader exit code 1: a required criterion failed or stayed inconclusive" >&2; exit 1 ;; \
		*) echo "grader exit code $$code: the grader could not run (a grader error, or a bad selection)" >&2; \
		   exit $$code ;; \
	esac

gradebook: $(STAMP)
	@test -n "$(SUBMISSIONS)" || { echo "usage: make gradebook PHASE=1 SUBMISSIONS=path/to/folder"; exit 2; }
	$(PY) -m graders batch --phase $(PHASE) $(if $(PART),--part $(PART)) --submissions $(SUBMISSIONS) \
		$(if $(OUT),--out $(OUT)) \
		$(if $(filter 1 yes true,$(QUICK)),--quick) $(if $(TASK),--task $(TASK)) $(foreach c,$(CRITERION),--criterion $(c))

stability: $(STAMP)
	$(PY) -m graders stability --phase $(PHASE) $(if $(PART),--part $(PART)) --impl $(if $(filter command line environment,$(origin IMPL)),$(IMPL),reference) --times $(TIMES) \
		$(if $(filter 1 yes true,$(QUICK)),--quick) $(if $(PROFILE),--profile $(PROFILE)) $(if $(NEIGHBOUR),--neighbour $(NEIGHBOUR)) \
		$(if $(TASK),--task $(TASK)) $(foreach c,$(CRITERION),--criterion $(c))

triton: $(TRITON_STAMP)

$(TRITON_STAMP): phase4_production/server/triton-requirements.txt
	@test -x $(TRITON_PYTHON) || { echo "make triton needs the OS's python3.11 at $(TRITON_PYTHON) (Debian/Ubuntu: apt install python3.11-venv; or TRITON_PYTHON=...): Triton's Python backend loads its libpython3.11.so" >&2; exit 2; }
	test -x $(TRITON_VENV)/bin/python || $(TRITON_PYTHON) -m venv $(TRITON_VENV)
	$(TRITON_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(TRITON_VENV)/bin/python -m pip install --quiet -r phase4_production/server/triton-requirements.txt
	@touch $(TRITON_STAMP)

edge-bundle: $(STAMP)
	$(PY) -m phase4_production.edge bundle --out $(or $(OUT),dist/edge) $(IMPL_ARG)

demo: $(STAMP)
	$(PY) -m phase4_production.pipeline $(if $(VIDEOS),run $(VIDEOS),demo) --out $(or $(OUT),out) $(IMPL_ARG)

data: $(STAMP)
	$(PY) -m labdata.generate

models: $(STAMP)
	$(PY) -m labdata.train --all

# Real Triton is the server part's peer: its tests skip, saying why, where `make triton` cannot run.
test: $(STAMP) models
	-@$(MAKE) --no-print-directory triton
	$(PY) -m pytest --durations=30

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

# A zip to upload as a Gradescope autograder (graders/autograder.py; default dist/gradescope-phaseN[-PART].zip).
gradescope: $(STAMP)
	$(PY) -m graders gradescope --phase $(PHASE) $(if $(PART),--part $(PART)) $(if $(DEST),--dest $(DEST))

fingerprint: $(STAMP)
	$(PY) -m graders fingerprint

clean:
	rm -rf grades .pytest_cache .benchmarks
