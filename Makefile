# Distribution packages of oidcd, and the fuzz targets. Everything else builds and tests with
# cargo and tests/run.
#
#   make packages        the .deb (cargo-deb) and the .rpm (cargo-generate-rpm), one build
#   make deb | make rpm  one of them
#   make lint-packages   lintian and rpmlint on the built packages; manual pages up to date
#   make test-packages   install, upgrade, remove and purge in throw-away roots (root only)
#   make man             regenerate oidcd.toml(5) from the commented default configuration
#
# DEB_VERSION=0.1.1-1 (RPM_VERSION=0.1.1) builds a package with another version: the upgrade
# tests install one over the other.
# NO_BUILD=1 packages what target/release already holds.
#
#   make fuzz-build      build every fuzz target (cargo-fuzz, nightly; see fuzz/README.md)
#   make fuzz            run each target FUZZ_SECONDS (default 60) from its seeds; stops at the
#                        first crash. FUZZ_TARGETS picks targets, FUZZ_ARGS adds libFuzzer flags.

CARGO ?= cargo
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
DEB_ARCH := $(shell dpkg --print-architecture 2>/dev/null || echo amd64)
RPM_ARCH := $(shell uname -m)
DEB_VERSION ?= $(VERSION)-1
RPM_VERSION ?= $(VERSION)
TARGET_DIR := $(or $(CARGO_TARGET_DIR),target)
DEB := $(TARGET_DIR)/debian/oidcd_$(DEB_VERSION)_$(DEB_ARCH).deb
RPM := $(TARGET_DIR)/generate-rpm/oidcd-$(RPM_VERSION)-1.$(RPM_ARCH).rpm
MAN_PAGES := oidcd.8 oidcctl.8 pam_oidc.8 nss_oidc.8 oidcd.toml.5

FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= request_frame response_to_nss config claims id_token provider_answers login_prompt nss_map
FUZZ_ARGS ?=

.PHONY: packages deb rpm build man lint-packages test-packages fuzz fuzz-build

packages: deb rpm

build:
ifndef NO_BUILD
	$(CARGO) build --release --locked -p oidcd -p nss_oidc -p pam_oidc
endif

deb: build
	$(CARGO) deb -p oidcd --no-build --locked --deb-version $(DEB_VERSION)
	@ls -l $(DEB)

rpm: build
	mkdir -p target/packaging/man
	for p in $(MAN_PAGES); do gzip -9 -n -c packaging/man/$$p > target/packaging/man/$$p.gz; done
	$(CARGO) generate-rpm -p daemon --set-metadata 'version = "$(RPM_VERSION)"'
	@ls -l $(RPM)

man: packaging/man/oidcd.toml.5

packaging/man/oidcd.toml.5: packaging/config/oidcd.toml packaging/man/oidcd.toml.5.awk Cargo.toml
	awk -v version=$(VERSION) -f packaging/man/oidcd.toml.5.awk packaging/config/oidcd.toml > $@

# Fails on any lintian error or warning, any rpmlint error, and a manual page that does not
# match the configuration or version. Remaining tags are overridden or filtered, each with its
# reason: packaging/deb/lintian-overrides, packaging/rpm/rpmlint.toml.
lint-packages:
	@awk -v version=$(VERSION) -f packaging/man/oidcd.toml.5.awk packaging/config/oidcd.toml \
		| cmp -s - packaging/man/oidcd.toml.5 \
		|| { echo "packaging/man/oidcd.toml.5 is out of date: make man" >&2; exit 1; }
	@for p in $(MAN_PAGES); do \
		grep -q '^\.TH .*"oidcd $(VERSION)"' packaging/man/$$p \
			|| { echo "packaging/man/$$p: .TH does not say oidcd $(VERSION)" >&2; exit 1; }; \
	done
	@for s in packaging/deb/preinst packaging/deb/postinst packaging/deb/prerm packaging/deb/postrm \
		packaging/nsswitch/oidc-nsswitch packaging/rpm/*.sh; do sh -n $$s || exit 1; done
	lintian --fail-on error,warning --display-info $(DEB)
	rpmlint --strict -c packaging/rpm/rpmlint.toml $(RPM)

test-packages:
	tests/packages/run

fuzz-build:
	cd fuzz && $(CARGO) +nightly fuzz build

# New inputs go to fuzz/corpus/<target> (ignored by git); fuzz/seeds/<target> is only read.
fuzz: fuzz-build
	cd fuzz && for t in $(FUZZ_TARGETS); do \
		mkdir -p corpus/$$t && \
		$(CARGO) +nightly fuzz run $$t corpus/$$t seeds/$$t -- \
			-dict=dict/$$t.dict -max_total_time=$(FUZZ_SECONDS) $(FUZZ_ARGS) || exit 1; \
	done
