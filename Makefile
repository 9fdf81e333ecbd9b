# Reports of "A Closer Look at Accuracy vs. Robustness" (Yang et al., NeurIPS 2020).
#
#   make reports     compute every record this machine can, then render reports/ (tables, figures,
#                    README). Each step reuses a stored record made with the same config, so a second
#                    run only renders; an interrupted training grid resumes from its checkpoints.
#   make render      render reports/ from the stored records only (no computation)
#   make status      list stored and missing records, with the command for each missing one
#   make test        the test suite
#
# Variables (override on the command line, e.g. make reports DATA_ROOT=/tmp/data):
#   DATA_ROOT        data folder in torchvision's layout, read only (MNIST / Fashion-MNIST are read from
#                    their .gz archives, verified). Default ../shared/data.
#   RESULTS, REPORTS where records are read/written and where the reports go.
#   GRIDS            training grid files behind Tables 2 and 3.

PYTHON ?= python
SHARED_DATA ?= ../shared/data
DATA_ROOT ?= $(SHARED_DATA)
RESULTS ?= results
REPORTS ?= reports
GRIDS ?= configs/mnist_cpu.yaml
SEPARATION_DATASETS ?= mnist fashion-mnist digits
SEPARATION_NORMS ?= linf l2
# the constructed classifier: dataset, norm and eps of lipschitz_construct.verify, and the number of
# train/test points on which analysis.evaluate attacks it (it is fitted on those training points)
CONSTRUCT_DATASET ?= mnist
CONSTRUCT_NORM ?= linf
CONSTRUCT_EPS ?= 0.1
CONSTRUCTED_EVAL_SUBSET ?= 500
PYTEST_ARGS ?=

.PHONY: reports records separation construct evaluate-constructed grids bounds evaluate-achieved render status test test-reports mutation mutation-sample

reports:
	$(MAKE) records
	$(MAKE) render

records: separation construct evaluate-constructed grids bounds evaluate-achieved

separation:
	@set -e; for ds in $(SEPARATION_DATASETS); do for norm in $(SEPARATION_NORMS); do \
	  echo "== separation $$ds $$norm"; \
	  $(PYTHON) -m separation.compute --dataset $$ds --norm $$norm --data-root "$(DATA_ROOT)" \
	    --out "$(RESULTS)/separation" --no-progress; \
	done; done

construct:
	$(PYTHON) -m lipschitz_construct.verify --dataset $(CONSTRUCT_DATASET) --norm $(CONSTRUCT_NORM) \
	  --eps $(CONSTRUCT_EPS) --data-root "$(DATA_ROOT)" --out "$(RESULTS)/construct"

evaluate-constructed:
	$(PYTHON) -m analysis.evaluate --model constructed --dataset $(CONSTRUCT_DATASET) --norm $(CONSTRUCT_NORM) \
	  --eps $(CONSTRUCT_EPS) --subset $(CONSTRUCTED_EVAL_SUBSET) --data-root "$(DATA_ROOT)" --no-progress \
	  --out "$(RESULTS)/evaluate"

grids:
	@set -e; for g in $(GRIDS); do \
	  echo "== training grid $$g"; \
	  $(PYTHON) -m analysis.grid $$g --data-root "$(DATA_ROOT)" --results-root "$(RESULTS)/training" --no-progress; \
	done

# the robustness bounds of the full training sets (analysis/rendering/collect.py BOUNDS_RUNS: the same grids;
# each eps exact: 94/255 is half the l-inf separation 188/255, 1.199355 the decimal just above half the l2 one,
# 7.3 and 135/17 half the l1 ones)
BOUNDS_ARGS = --split train --randomized --data-root "$(DATA_ROOT)" --out "$(RESULTS)/bounds" --no-progress
bounds:
	$(PYTHON) -m lipschitz_construct.bounds --dataset mnist --norm linf $(BOUNDS_ARGS) \
	  --eps 94/255 0.4 0.44 0.46 0.47 0.48 0.485 0.49 251/510 42/85
	$(PYTHON) -m lipschitz_construct.bounds --dataset mnist --norm l2 $(BOUNDS_ARGS) \
	  --eps 1.199355 1.5 1.75 2 2.25 2.5 2.625 2.75 3
	$(PYTHON) -m lipschitz_construct.bounds --dataset fashion-mnist --norm linf $(BOUNDS_ARGS) \
	  --eps 27/170 0.2 0.22 0.24 0.26 0.28 0.3 0.3125 0.325 0.3375 0.35
	$(PYTHON) -m lipschitz_construct.bounds --dataset fashion-mnist --norm l2 $(BOUNDS_ARGS) \
	  --eps 0.799378 1 1.2 1.4 1.5 1.6 1.7 1.8 1.9 2
	$(PYTHON) -m lipschitz_construct.bounds --dataset mnist --norm l1 $(BOUNDS_ARGS) \
	  --eps 7.3 8 10 12 14 16 18 20 22 24
	$(PYTHON) -m lipschitz_construct.bounds --dataset fashion-mnist --norm l1 $(BOUNDS_ARGS) \
	  --eps 135/17 10 12 14 16 18 20 22 24 26

# achieved vs achievable (Table 5; analysis/rendering/collect.py ACHIEVED_RUNS): the AT model of the CPU grid
# (its checkpoint is written by `make grids`) attacked at several eps on 500 MNIST test points, beside the
# data's optimal robust accuracy on the same points (--bounds), with the avoidable errors
ACHIEVED_CHECKPOINT ?= checkpoints/mnist_cpu/at-81a149e3/last.pt
evaluate-achieved:
	$(PYTHON) -m analysis.evaluate --checkpoint $(ACHIEVED_CHECKPOINT) --name at_mnist_cpu --dataset mnist \
	  --norm linf --eps 0.05 0.1 0.2 0.3 0.49 0.499 --subset 500 --bounds --data-root "$(DATA_ROOT)" --no-progress \
	  --out "$(RESULTS)/evaluate"

render:
	$(PYTHON) -m analysis.report all --results "$(RESULTS)" --out "$(REPORTS)" --data-root "$(DATA_ROOT)" \
	  $(addprefix --grid ,$(GRIDS))

status:
	$(PYTHON) -m analysis.report status --results "$(RESULTS)" --data-root "$(DATA_ROOT)" $(addprefix --grid ,$(GRIDS))

test:
	$(PYTHON) -m pytest $(PYTEST_ARGS)

test-reports:
	$(PYTHON) -m pytest tests/analysis/test_report.py $(PYTEST_ARGS)

# mutation testing of the core modules ([mutmut] in setup.cfg; hours on 2 cores, not in CI). The verdicts
# are kept in reports/quality/mutmut-results.json: a run resumes where any earlier one stopped, in this
# clone or another, re-testing only the mutants of functions changed since; then the report is rendered
MUTATION_REPORT = $(PYTHON) tests/scripts/mutation_report.py
mutation:
	$(MUTATION_REPORT) --restore
	SHARED_DATA=$(abspath $(SHARED_DATA)) $(PYTHON) -m mutmut run --max-children 2 > /dev/null
	$(MUTATION_REPORT)

# a seeded random sample of PER_MODULE not-yet-run mutants of each module
PER_MODULE ?= 15
SEED ?= 0
mutation-sample:
	$(MUTATION_REPORT) --restore
	mkdir -p mutants && $(MUTATION_REPORT) --sample $(PER_MODULE) --seed $(SEED) > mutants/sample.txt
	SHARED_DATA=$(abspath $(SHARED_DATA)) xargs -a mutants/sample.txt -d '\n' $(PYTHON) -m mutmut run --max-children 2 > /dev/null
	$(MUTATION_REPORT) --first-pass mutants/sample.txt --seed $(SEED) --per-module $(PER_MODULE)
