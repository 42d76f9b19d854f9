VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: install run test check test-postgres test-sqlite lint bench clean check-deploy lock screenshots typecheck

install: $(VENV)/.installed

# Every dependency from the lock file, each checked against its hashes; then the project.
$(VENV)/.installed: pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --require-hashes -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

# After changing a pin in pyproject.toml: the lock file again, with hashes (uv, a dev tool
# run from its own environment so it never enters the project's).
lock:
	$(PYTHON) -m venv var/lock-tools && var/lock-tools/bin/pip install --quiet uv
	var/lock-tools/bin/uv pip compile pyproject.toml --extra dev --generate-hashes \
		--python-version 3.11 --index-url https://pypi.org/simple -o requirements.lock

# Install, migrate the embedded database, load demo data, then serve web + workers on
# OPSCONSOLE_HOST:OPSCONSOLE_PORT (127.0.0.1:8000). A taken port stops the run first, naming
# a free one, rather than printing logins for a server that cannot start. The demo's
# integrations call 127.0.0.1, which production refuses unless allowed; its providers are
# the sandbox (PROVIDERS_SANDBOX), which production never turns on.
run: export OUTBOUND_ALLOWED_HOSTS := 127.0.0.1,localhost
run: export PROVIDERS_SANDBOX := true
# The weekly digest goes somewhere in the demo (the sandbox email channel), so its re-run
# (manage.py run_weekly_digest) can be practised.
run: export OPERATIONS_DIGEST_EMAIL ?= operations@example.test
run: export LOG_FORMAT := console
run: install .env
	$(BIN)/python scripts/check-port.py
	mkdir -p var
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0
	$(BIN)/python manage.py setup_schedules
	$(BIN)/python manage.py demo_data
	$(BIN)/honcho start

# A local .env for make run: a random SECRET_KEY (production refuses to start without one)
# and the loopback hosts the demo's stand-in endpoints live on. An existing .env is kept.
.env:
	printf 'SECRET_KEY=%s\nOUTBOUND_ALLOWED_HOSTS=127.0.0.1,localhost\nPROVIDERS_SANDBOX=true\nOPERATIONS_DIGEST_EMAIL=operations@example.test\n' \
		"$$($(PYTHON) -c 'import secrets; print(secrets.token_urlsafe(50))')" > $@

# Test processes side by side (pytest-xdist, a database each); one per core by default.
TEST_PROCESSES ?= $(shell nproc 2>/dev/null || echo 2)

# The whole suite on PostgreSQL (a private cluster unless DATABASE_URL is given): the unit,
# API and concurrency tests in parallel, then the system tests one at a time (browser walks
# on a live server, the scale-out clusters), then the queue and booking tests again through
# PgBouncer in transaction pooling mode; then the smoke subset on the embedded SQLite
# database, then the linters (code and import contracts), types and the deployment checks,
# and the Prometheus alert rules with their unit tests (promtool).
test: install
	scripts/ensure-chromium.sh
	scripts/ensure-redis.sh
	scripts/with-postgres.sh sh -c '\
		$(BIN)/pytest -q -p no:cacheprovider -n $(TEST_PROCESSES) -m "not system" --durations=25 && \
		$(BIN)/pytest -q -p no:cacheprovider -n $(TEST_PROCESSES) --dist loadfile -m system --durations=10 && \
		scripts/with-pgbouncer.sh $(BIN)/pytest -q -p no:cacheprovider -n $(TEST_PROCESSES) tests/recovery tests/bookings'
	env -u DATABASE_URL $(BIN)/pytest -m smoke -p no:cacheprovider -q
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-cache
	$(MAKE) typecheck
	$(MAKE) check-deploy
	scripts/ensure-promtool.sh
	promtool check rules deploy/prometheus/alerts.yml
	promtool test rules deploy/prometheus/alerts_test.yml
	mkdir -p var && $(BIN)/python scripts/dashboard-rules.py deploy/grafana/incident-guide.json \
		> var/dashboard-rules.yml && promtool check rules var/dashboard-rules.yml

# The edit loop: the unit, API and concurrency tests in parallel on PostgreSQL, the linters
# and the types (no browser, no scale-out cluster, no PgBouncer run).
check: install
	scripts/with-postgres.sh $(BIN)/pytest -q -p no:cacheprovider -n $(TEST_PROCESSES) -m "not system" --durations=25
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-cache
	$(MAKE) typecheck

# mypy with the Django and DRF plugins, which load the settings: a throwaway key, no .env.
typecheck: install
	env -u DATABASE_URL OPSCONSOLE_READ_ENV_FILE=false \
		SECRET_KEY="$$($(PYTHON) -c 'import secrets; print(secrets.token_urlsafe(50))')" \
		$(BIN)/mypy opsconsole notifications payments bookings recovery storefront

# Production settings pass Django's deployment checks with no warning (a complete provider
# setup: Stripe, checkout and email configured, the other channels switched off on purpose).
check-deploy: install
	env -u DATABASE_URL OPSCONSOLE_READ_ENV_FILE=false DEBUG=false \
		SECRET_KEY="$$($(PYTHON) -c 'import secrets; print(secrets.token_urlsafe(50))')" \
		ALLOWED_HOSTS=console.example.com SECURE_SSL_REDIRECT=true \
		SESSION_COOKIE_SECURE=true CSRF_COOKIE_SECURE=true SECURE_HSTS_SECONDS=31536000 SECURE_HSTS_PRELOAD=true \
		SECURE_PROXY_SSL_HEADER=HTTP_X_FORWARDED_PROTO,https \
		STRIPE_SECRET_KEY=sk_live_placeholder PAYMENTS_CHECKOUT_URL=https://checkout.example.com/links \
		NOTIFICATIONS_EMAIL_URL=https://mail.example.com/send SMS_PROVIDER=none WHATSAPP_PROVIDER=none PUSH_PROVIDER=none \
		$(BIN)/python manage.py check --deploy --fail-level WARNING

# Benchmarks on PostgreSQL, each printing its measured ratios on its last line.
bench: install
	scripts/with-postgres.sh sh -c 'cd bench && for script in delivery_throughput.py delivery_latency.py e2e_latency.py delivery_vs_django_q.py hold_creation.py queue_list.py retention.py ingestion.py operator_views.py case_search.py; do echo "== $$script"; ../$(BIN)/python $$script || exit 1; done'

# The README's screenshots of the console (docs/screenshots), on the demo world; committed,
# not made in CI.
screenshots: install
	scripts/ensure-chromium.sh
	scripts/with-postgres.sh $(BIN)/pytest -p no:cacheprovider -q tests/proofs/screenshots.py

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) var/static var/postgres var/postgres-*
