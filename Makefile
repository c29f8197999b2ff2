# Trace: PGXS build of the extension, plus the worker programs, the test
# suites, the benchmark and the demo.
#
#   make            build the extension and the workers
#   make install    install them (needs write access to PostgreSQL's dirs)
#   make test       install missing packages, build, install, run every suite
#   make bench      run the benchmarks and print their figures

EXTENSION   = trace
EXTVERSION  = 0.1
MODULE_big  = trace
OBJS        = extension/trace.o extension/dispatcher.o extension/payload.o extension/lease.o \
              extension/yaml_tree.o extension/dag_report.o extension/dag_model.o \
              extension/dag_graph.o extension/dag_sql.o extension/cron.o \
              extension/wakeup.o
SHLIB_LINK  = -lyaml
DATA_built  = trace--$(EXTVERSION).sql
EXTRA_CLEAN = trace--$(EXTVERSION).sql extension/trace_errcodes.h
# pg_regress and isolation suites: `make installcheck` runs them against a
# running server that preloads trace with trace.database set to another
# database than the tests' (see docs/testing.md); `make test` runs them, and
# every other suite, on private clusters.
REGRESS        = $(sort $(basename $(notdir $(wildcard sql/*.sql))))
REGRESS_OPTS   = --dbname=trace_regression
ISOLATION      = $(sort $(basename $(notdir $(wildcard test/isolation/specs/*.spec))))
ISOLATION_OPTS = --inputdir=test/isolation --dbname=trace_isolation
# -Wall -Wextra clean; unused parameters are allowed because PostgreSQL's
# own headers (pg_list.h, bufpage.h inlines) have them.
PG_CPPFLAGS = -Wall -Wextra -Wno-unused-parameter -Werror=implicit-function-declaration

# The install script is assembled from one file per concept.
SQL_SOURCES = $(sort $(wildcard extension/sql/*.sql))

# Prefer the server's pg_config (Debian's /usr/bin/pg_config is libpq's).
PG_CONFIG ?= $(firstword $(wildcard /usr/lib/postgresql/15/bin/pg_config) pg_config)
PGXS := $(shell $(PG_CONFIG) --pgxs 2>/dev/null)

ifneq ($(PGXS),)
include $(PGXS)
else
all install:
	@echo "PostgreSQL server development files are missing: run 'make deps' (or 'make test')" >&2; exit 1
endif

trace--$(EXTVERSION).sql: $(SQL_SOURCES)
	cat $(SQL_SOURCES) > $@

# The SQLSTATEs are listed once, in extension/errcodes.txt; the C code uses
# the constants generated from it (the worker generates its own copy).
extension/trace_errcodes.h: extension/errcodes.txt extension/gen_errcodes.sh
	sh extension/gen_errcodes.sh header < extension/errcodes.txt > $@
$(OBJS) $(OBJS:.o=.bc): extension/trace_errcodes.h

# trace-worker (worker/): built, installed and cleaned with the extension.
.PHONY: worker worker-install worker-clean worker-check
all: worker
install: worker-install
clean: worker-clean
worker:
	$(MAKE) -C worker
worker-install: worker
	$(MAKE) -C worker install
worker-clean:
	$(MAKE) -C worker clean
worker-check: worker
	$(MAKE) -C worker check

.PHONY: deps test bench demo demo-stop
deps:
	bash .ci/install-deps.sh

# Everything a fresh Debian 12 machine needs, then every suite.
test: deps
	$(MAKE) all
	$(MAKE) install
	bash test/run.sh

bench: deps
	$(MAKE) all
	$(MAKE) install
	bash bench/run.sh
	bash bench/peers.sh
	bash bench/dag_bench.sh
	bash bench/chain_bench.sh

# A local chain followed live into Postgres (see dags/demo/demo.sh).
demo: deps
	$(MAKE) all
	$(MAKE) install
	bash dags/demo/demo.sh start

demo-stop:
	bash dags/demo/demo.sh stop
