# Set-up is part of every target: a fresh clone needs nothing but `make rpms` or `make test`.
# Needs: Python 3.11+, Debian's rpm and python3-rpm, a running Docker engine
# (`.ci/run` installs and starts all of them on Debian 12).

PYTHON  ?= python3
VENV    ?= .venv
REBUILD := $(VENV)/bin/rebuild
RECIPES ?= specs/sendmail.yaml
OUT     ?= artifacts
# rh73's trees: by default those its target.yaml names (Red Hat's archive); give a local copy here.
MIRROR  ?=
UPDATES ?=
PYTEST_ARGS ?=

.PHONY: all venv image rpms demo demo-sendmail test test-unit test-host-python lint bench clean

all: rpms

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	# compat: the checkout on sys.path through a plain .pth line; the default editable finder adds an
	# import hook every rebuild command pays for at start-up
	$(VENV)/bin/pip install --quiet -e '.[test]' --config-settings editable_mode=compat
	@touch $@

# An editable install is not byte-compiled as a wheel install is: compile it here (only changed
# files), so every run does not compile rebuild from source when PYTHONDONTWRITEBYTECODE is set.
venv: $(VENV)/.installed
	@$(VENV)/bin/python -m compileall -q rebuild

image: venv
	$(REBUILD) image testroot

# The main job: pin each recipe's SRPM (trust on first use, into specs/<name>.lock; verified after),
# make the images the recipes' targets need (from the trees their target.yaml names, or MIRROR=
# and UPDATES=), then build every recipe.
rpms: venv
	@for recipe in $(RECIPES); do $(REBUILD) fetch $$recipe --lock >/dev/null || exit $$?; done
	@for target in $$($(REBUILD) targets $(RECIPES)); do \
	  if [ "$$target" = testroot ]; then $(REBUILD) image testroot || exit $$?; \
	  else $(REBUILD) image $$target $(if $(MIRROR),--mirror $(MIRROR)) $(if $(UPDATES),--updates $(UPDATES)) || exit $$?; fi; \
	done
	$(REBUILD) build $(RECIPES) --out $(OUT)

# Offline demo: pack the example package (rebuild/examples/hello, errata 80) into an SRPM, make the
# testroot image, rebuild the SRPM there with errata 73 (what `rebuild demo` does in any folder).
demo: venv
	$(REBUILD) demo --out $(OUT)

# The 2003 procedure on a real mail server (needs Debian's archive once; offline when cached): the i686
# test root, sendmail 8.17 with STARTTLS and SASL built from its upstream tarball with errata 73,
# published, installed, configured, started, audited and probed. Prints the result folder, the
# probe's report and the audit's verdict.
demo-sendmail: venv
	$(VENV)/bin/python -m tests.sendmail_procedure $(OUT)/demo-sendmail

test: venv
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

lint: venv
	$(VENV)/bin/ruff check rebuild tests bench

test-unit: venv
	$(VENV)/bin/python -m pytest -m "not docker and not mta" $(PYTEST_ARGS)

# The fast layer under the host's own Python (Debian 12: /usr/bin/python3, 3.11.2), rebuild installed as a
# wheel (not editable) into its own virtualenv: what `pipx install` users run.
HOST_PYTHON ?= /usr/bin/python3
test-host-python:
	$(HOST_PYTHON) -m venv .venv-host
	.venv-host/bin/pip install --quiet '.[test]'
	rm -rf build rebuild.egg-info
	.venv-host/bin/python -m pytest -p no:cacheprovider -m "not docker and not mta" $(PYTEST_ARGS)

bench: image
	$(VENV)/bin/python bench/run_all.py

clean:
	rm -rf build $(OUT) .pytest_cache .venv-host
