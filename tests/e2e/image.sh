# shellcheck shell=bash disable=SC2034 # SETUP_ERR is read by run_scenarios (lib.sh)
# image.sh — the OCI image (`make image`) as the registry's realm: built
# offline inside the suite's network namespace (which has no interface but
# lo, so any attempt to pull a base image or reach a network fails), run
# under podman as non-root, on a read-only root filesystem with no tmpfs
# (`--read-only --read-only-tmpfs=false`), every capability dropped and
# no-new-privileges, config and keys mounted read-only at /etc/regauth.
#
# Sourced by run.sh after lib.sh and scenarios.sh (ISSUER, ALICE_PW,
# alice's hash from cli/hash, the fixture image IMG_V1/V1_LAYER). Entry
# point: run_image_setup.
#
# The image is built by image/build.sh (what `make image` runs) from the
# binary under test ($REGAUTH) into the suite's own podman storage (vfs, under
# the temp dir), so it tests this checkout's Containerfile and staging, and
# never the host's image store.
#
# podman in the namespace: storage driver vfs, cgroup manager cgroupfs, file
# events, runtime state under the temp dir (the `pm` flags, lib.sh), and
# `--network host` — the namespace's own loopback, so no network backend
# (CNI/netavark) is involved. `--ulimit nofile/nproc` are given explicitly:
# podman as root otherwise asks runc for nofile=1048576 and nproc=4194304,
# which a host without CAP_SYS_RESOURCE (a sandbox, a nested container)
# refuses ("error setting rlimit type 7: operation not permitted").
#
# Tests:
#   built              the image: one layer (no base image), User 65532:65532,
#                      entrypoint /regauth, cmd serve --config
#                      /etc/regauth/config.yml, port 5001; its size is printed
#   check              `regauth check` in the container accepts the mounted config
#                      and warns that a loopback server.addr in a container is
#                      reachable only through --network host or a proxy beside it
#   unreadable-key     a key mounted 0600 root-owned: the container stops with
#                      the README's "Permission denied" message for the key's path
#   non-root           the serving process: podman's Config.User is 65532:65532,
#                      the uids/gids in /proc/PID/status (seen from outside the
#                      container) are 65532, no effective capability, NoNewPrivs
#   read-only-rootfs   ReadonlyRootfs is true, / is mounted ro, no writable
#                      mount except the kernel's (/dev, /proc, /sys), and
#                      regauth still serves
#   skopeo-push-pull   skopeo pushes alice/app:v1 with credentials through the
#                      registry whose realm is the container, and pulls it back

IM_NAME="regauth-e2e-image"
IM_TAG="localhost/regauth:e2e"

# podman with the suite's storage and runtime settings (as `pm`, lib.sh),
# as an array so that it also runs under `timeout` and without one (the
# long-running container).
IM_PODMAN=(podman --root "$E2E_TMP/podman/root" --runroot "$E2E_TMP/podman/runroot"
	--tmpdir "$E2E_TMP/podman/tmp" --storage-driver vfs --events-backend file
	--cgroup-manager cgroupfs)

# im_podman ARGS... — podman as above, under the clients' timeout.
im_podman() {
	timeout "$E2E_CLIENT_TIMEOUT" "${IM_PODMAN[@]}" "$@"
}

# im_run_args — the `podman run` options every container of the setup gets.
im_run_args() {
	local nofile
	nofile=$(ulimit -Hn)
	[[ "$nofile" == unlimited ]] && nofile=65536
	IM_RUN=(--network host --read-only --read-only-tmpfs=false
		--cap-drop all --security-opt no-new-privileges
		--ulimit "nofile=$nofile:$nofile" --ulimit nproc=4096:4096)
}

# image_setup_up — build the image, keygen and config into the mounted
# directory, the registry, then the container; wait until each answers.
image_setup_up() {
	IM_DIR="$E2E_TMP/image"
	IM_CONF="$IM_DIR/conf"
	SETUP_ERR=""
	mkdir -p "$IM_CONF"
	local log="$E2E_LOGS/image_startup.log" ap rp h_alice
	im_run_args

	# Offline: no interface but lo exists here, and build.sh passes
	# --network none --pull=never besides.
	if ! "$E2E_DIR/../../image/build.sh" --bin "$REGAUTH" --stage "$IM_DIR/stage" --tag "$IM_TAG" -- \
		"${IM_PODMAN[@]:1}" >>"$log" 2>&1; then
		SETUP_ERR="image/build.sh failed: $(tail -n 2 "$log" | tr '\n' ' ')"
		return 1
	fi
	IM_SIZE=$(im_podman image inspect --format '{{.Size}}' "$IM_TAG")

	if ! "$REGAUTH" keygen --out "$IM_CONF" --alg ES256 >>"$log" 2>&1; then
		SETUP_ERR="regauth keygen failed: $(tail -n1 "$log")"
		return 1
	fi
	# keygen writes the key 0600 for its owner (root here); the container's
	# user must be able to read it (the README's Troubleshooting row).
	cp -a "$IM_CONF" "$IM_DIR/conf-root-key"
	chown 65532:65532 "$IM_CONF/token.key"
	h_alice=$(cat "$E2E_TMP/fixtures/alice.hash" 2>/dev/null) || {
		SETUP_ERR="no password hashes (cli/hash failed)"
		return 1
	}
	free_ports ap rp || return 1
	IM_BASE="http://127.0.0.1:$ap"
	IM_REG="127.0.0.1:$rp"
	IM_SVC="e2e-registry-image"

	# Paths as the container sees them; the certificate's is relative (the
	# image's working directory is /etc/regauth).
	local f
	for f in "$IM_CONF/config.yml" "$IM_DIR/conf-root-key/config.yml"; do
		cat >"$f" <<EOF
server:
  addr: "127.0.0.1:$ap"
token:
  issuer: "$ISSUER"
  expiration: 900
  certificate: token.pem
  key: /etc/regauth/token.key
users:
  alice: {password: "$h_alice"}
acl:
  - match: {account: "alice"}
    actions: ["*"]
    comment: "alice is admin"
EOF
	done
	write_registry_config "$IM_DIR/registry.yml" "$IM_DIR/registry-data" "$IM_REG" "$IM_BASE/auth" "$IM_SVC" "$IM_CONF/token.pem"

	# The container, attached: regauth's stderr is the log (secrets.sh
	# scans it with the others). TERM to podman is passed on to regauth.
	IM_REGAUTH_LOG="$E2E_LOGS/image_regauth.log"
	start_bg "$IM_REGAUTH_LOG" "${IM_PODMAN[@]}" run --rm --name "$IM_NAME" "${IM_RUN[@]}" \
		-v "$IM_CONF:/etc/regauth:ro" -e NO_COLOR=1 -e "RUST_LOG=$E2E_REGAUTH_LOG_LEVEL" "$IM_TAG"
	IM_PODMAN_PID=$BG_PID
	printf '%s\t%s\n' "$IM_PODMAN_PID" "$IM_REGAUTH_LOG" >>"$E2E_REGAUTH_LOGS"
	if ! wait_http "$IM_BASE/healthz" 200 "$IM_PODMAN_PID" 60 >>"$log" 2>&1; then
		SETUP_ERR="the regauth container did not answer: $(tail -n1 "$log"); its log: $(tail -n 3 "$IM_REGAUTH_LOG" | tr '\n' ' ' | cut -c1-400)"
		return 1
	fi
	# As start_regauth: one HTTP/2 request with Basic credentials, so the
	# debug log has DEBUG lines for secrets.sh to look at.
	record_secret "$E2E_CANARY_PW" "$(printf 'e2e-canary:%s' "$E2E_CANARY_PW" | base64 -w0)"
	curl -sS -o /dev/null --max-time 5 --http2-prior-knowledge -u "e2e-canary:$E2E_CANARY_PW" \
		"$IM_BASE/healthz" >>"$log" 2>&1 || true

	IM_REGISTRY_LOG="$E2E_LOGS/image_registry.log"
	setup_registry "$IM_REGISTRY_LOG" "$IM_DIR/registry.yml" "http://$IM_REG" "$log" || return 1
	IM_REGISTRY_PID=$BG_PID
	export IM_DIR IM_CONF IM_BASE IM_REG IM_SVC IM_REGAUTH_LOG IM_SIZE
}

image_setup_down() {
	stop_vars IM_REGISTRY_PID
	im_podman stop -t 5 "$IM_NAME" >>"$E2E_LOGS/image_startup.log" 2>&1 || true
	stop_vars IM_PODMAN_PID
	im_podman rm -f "$IM_NAME" >>"$E2E_LOGS/image_startup.log" 2>&1 || true
}

# im_pid — the container's main process, as this PID namespace sees it.
im_pid() {
	local pid
	pid=$(im_podman inspect --format '{{.State.Pid}}' "$IM_NAME") || fail "podman inspect $IM_NAME failed"
	[[ "$pid" =~ ^[1-9][0-9]*$ && -r /proc/$pid/status ]] || fail "no running process for $IM_NAME (pid '$pid')"
	printf '%s' "$pid"
}

t_im_built() {
	local cfg layers
	cfg=$(im_podman image inspect --format '{{json .Config}}' "$IM_TAG") || fail "no image $IM_TAG"
	note "config: $cfg"
	assert_eq "image user" "65532:65532" "$(jq -r .User <<<"$cfg")"
	assert_eq "entrypoint" '["/regauth"]' "$(jq -c .Entrypoint <<<"$cfg")"
	assert_eq "cmd" '["serve","--config","/etc/regauth/config.yml"]' "$(jq -c .Cmd <<<"$cfg")"
	assert_eq "exposed ports" '["5001/tcp"]' "$(jq -c '.ExposedPorts | keys' <<<"$cfg")"
	# FROM scratch: the one layer is the staged rootfs.
	layers=$(im_podman image inspect --format '{{len .RootFS.Layers}}' "$IM_TAG")
	assert_eq "layers (no base image)" 1 "$layers"
	grep -q -- '--network none --pull=never' "$E2E_DIR/../../image/build.sh" ||
		fail "image/build.sh no longer builds with --network none --pull=never"
	note "image $IM_TAG: $IM_SIZE bytes"
	((IM_SIZE > 0 && IM_SIZE < 100 * 1024 * 1024)) || fail "image size $IM_SIZE is not between 0 and 100 MiB"
}

t_im_check() {
	expect_ok "regauth check in the container" im_podman run --rm "${IM_RUN[@]}" \
		-v "$IM_CONF:/etc/regauth:ro" "$IM_TAG" check --config /etc/regauth/config.yml
	# The config listens on 127.0.0.1 (fine here: --network host); check
	# knows it runs in a container and says what that means for -p.
	assert_contains "check's warnings" "$(cat "$E2E_TMP/out" "$E2E_TMP/err")" \
		"server.addr is a loopback address and regauth runs in a container"
}

t_im_unreadable_key() {
	local rc=0 out
	note "the key as keygen wrote it: $(stat -c '%a %U:%G' "$IM_DIR/conf-root-key/token.key")"
	out=$(im_podman run --rm "${IM_RUN[@]}" -v "$IM_DIR/conf-root-key:/etc/regauth:ro" "$IM_TAG" 2>&1) || rc=$?
	printf '%s\n' "$out" >&2
	((rc != 0 && rc != 124)) || fail "the container with an unreadable key did not fail (exit $rc)"
	assert_contains "error message" "$out" "cannot read /etc/regauth/token.key: Permission denied"
}

t_im_non_root() {
	local pid user status
	user=$(im_podman inspect --format '{{.Config.User}}' "$IM_NAME")
	assert_eq "podman inspect Config.User" "65532:65532" "$user"
	pid=$(im_pid)
	status=$(cat "/proc/$pid/status")
	note "$(grep -E '^(Name|Uid|Gid|Groups|CapEff|NoNewPrivs)' <<<"$status")"
	assert_eq "process name" "regauth" "$(awk '/^Name:/ {print $2}' <<<"$status")"
	assert_eq "real, effective, saved, fs uid" "65532 65532 65532 65532" "$(awk '/^Uid:/ {print $2, $3, $4, $5}' <<<"$status")"
	assert_eq "real, effective, saved, fs gid" "65532 65532 65532 65532" "$(awk '/^Gid:/ {print $2, $3, $4, $5}' <<<"$status")"
	assert_eq "effective capabilities" "0000000000000000" "$(awk '/^CapEff:/ {print $2}' <<<"$status")"
	assert_eq "NoNewPrivs" "1" "$(awk '/^NoNewPrivs:/ {print $2}' <<<"$status")"
}

t_im_read_only_rootfs() {
	local pid rw
	assert_eq "podman inspect HostConfig.ReadonlyRootfs" true \
		"$(im_podman inspect --format '{{.HostConfig.ReadonlyRootfs}}' "$IM_NAME")"
	pid=$(im_pid)
	note "mounts: $(awk '{print $5, $6}' "/proc/$pid/mountinfo" | tr '\n' ';')"
	# mountinfo: field 5 is the mount point, field 6 its per-mount options.
	assert_eq "options of the / mount" ro "$(awk '$5 == "/" {split($6, o, ","); print o[1]}' "/proc/$pid/mountinfo")"
	rw=$(awk '$6 ~ /^rw/ && $5 !~ /^\/(dev|proc|sys)(\/|$)/ {print $5}' "/proc/$pid/mountinfo" | tr '\n' ' ')
	[[ -z "$rw" ]] || fail "writable mounts besides the kernel's /dev, /proc and /sys: $rw"
	expect_ok "healthz with nothing writable" curl -sS -f --max-time 5 "$IM_BASE/healthz"
}

t_im_skopeo_push_pull() {
	expect_ok "push alice/app:v1" sk copy --dest-tls-verify=false --dest-creds "alice:$ALICE_PW" \
		"oci:$IMG_V1:v1" "docker://$IM_REG/alice/app:v1"
	rm -rf "$IM_DIR/pulled"
	expect_ok "pull alice/app:v1" sk copy --src-tls-verify=false --src-creds "alice:$ALICE_PW" \
		"docker://$IM_REG/alice/app:v1" "dir:$IM_DIR/pulled"
	[[ -s "$IM_DIR/pulled/${V1_LAYER#sha256:}" ]] || fail "pulled layer ${V1_LAYER} missing"
	expect_granted "$IM_REGAUTH_LOG" alice "repository:alice/app:[pull,push]"
}

IMAGE_SCENARIOS=(
	built:t_im_built
	check:t_im_check
	unreadable-key:t_im_unreadable_key
	non-root:t_im_non_root
	read-only-rootfs:t_im_read_only_rootfs
	skopeo-push-pull:t_im_skopeo_push_pull
)

# run_image_setup — build the image, run it as the realm, run the scenarios,
# bring it down.
run_image_setup() {
	local up=0
	echo "== setup image: the OCI image built offline (image/build.sh), run read-only and non-root under podman"
	image_setup_up || up=$?
	[[ -n "${IM_SIZE:-}" ]] && echo "   image $IM_TAG: $IM_SIZE bytes ($(numfmt --to=iec-i --suffix=B "$IM_SIZE"))"
	run_scenarios image "$up" "${IMAGE_SCENARIOS[@]}"
	image_setup_down
}
