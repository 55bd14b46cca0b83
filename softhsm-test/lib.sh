# Shared by demo.sh, test.sh and new-token.sh. Sourced, not run.
# Installs what is missing (Debian/Ubuntu, as root) and finds the SoftHSM module.

# Debian packages needed to build and run hsm-acme against SoftHSM.
HSM_ACME_PACKAGES="softhsm2 opensc openssl ca-certificates pkg-config libssl-dev build-essential publicsuffix"

# ensure_packages PKG...: installs the packages that are not installed yet.
ensure_packages() {
    missing=""
    for pkg in "$@"; do
        if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
            missing="$missing $pkg"
        fi
    done
    [ -z "$missing" ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        echo "missing packages:$missing (run as root, or install them)" >&2
        return 1
    fi
    echo "installing:$missing" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    # shellcheck disable=SC2086
    apt-get install -y -qq $missing >&2
}

# ensure_cargo: puts cargo on PATH or explains how to get it.
ensure_cargo() {
    if command -v cargo >/dev/null 2>&1; then return 0; fi
    if [ -x "$HOME/.cargo/bin/cargo" ]; then
        PATH="$HOME/.cargo/bin:$PATH"; export PATH; return 0
    fi
    echo "cargo not found: install Rust 1.85 or newer (https://rustup.rs) and rerun" >&2
    return 1
}

# softhsm_module: prints the path of libsofthsm2.so.
softhsm_module() {
    for m in /usr/lib/softhsm/libsofthsm2.so \
             /usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so \
             /usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so \
             /usr/local/lib/softhsm/libsofthsm2.so; do
        if [ -f "$m" ]; then echo "$m"; return 0; fi
    done
    echo "libsofthsm2.so not found" >&2
    return 1
}

# new_token DIR LABEL USER_PIN SO_PIN: a SoftHSM token store of its own under DIR.
# Writes DIR/softhsm2.conf and DIR/tokens/; the caller exports SOFTHSM2_CONF.
new_token() {
    dir=$1 label=$2 user_pin=$3 so_pin=$4
    mkdir -p "$dir/tokens"
    chmod 700 "$dir/tokens"
    cat > "$dir/softhsm2.conf" <<CONF
# SoftHSM token store for hsm-acme; used through SOFTHSM2_CONF, never the system store.
directories.tokendir = $dir/tokens
objectstore.backend = file
log.level = ERROR
slots.removable = false
CONF
    SOFTHSM2_CONF="$dir/softhsm2.conf" softhsm2-util --init-token --free \
        --label "$label" --so-pin "$so_pin" --pin "$user_pin" >/dev/null
}
