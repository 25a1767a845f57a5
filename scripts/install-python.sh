#!/usr/bin/env bash
# Install kgnet (editable, with its dev tools) into the venv VENV (default .venv), with uv.
#
# Why uv: the set-up is mostly unpacking torch's CUDA build (about 5.5 GB with its nvidia
# libraries); pip does that in one thread in about 80 s on 2 cores, uv in about 20 s. uv is
# given pip's own configuration (its indexes, find-links, constraints and certificate), so it
# takes the same packages pip would. Where uv cannot be installed (an offline machine without
# it in pip's cache) or fails, pip does the install, and says so.
set -euo pipefail
venv=${1:-.venv}
py="$venv/bin/python"

pip_install() {
    "$py" -m pip install --quiet --disable-pip-version-check -e '.[dev]'
}

if ! "$py" -m pip install --quiet --disable-pip-version-check uv 2>/dev/null; then
    echo "install: uv is not available here; installing with pip (slower)"
    pip_install
    exit 0
fi

# pip's configuration as uv flags, one per line: an index, find-links, constraints, certificate
mapfile -t flags < <("$py" - <<'EOF'
import ast
import subprocess
import sys

listed = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True).stdout
as_flag = {"index-url": "--index-url", "extra-index-url": "--extra-index-url", "find-links": "--find-links",
           "constraint": "--constraint"}
seen = []
for line in listed.splitlines():
    key, _, value = line.partition("=")
    name = key.rsplit(".", 1)[-1]
    try:
        values = str(ast.literal_eval(value)).split()
    except (ValueError, SyntaxError):
        continue
    for item in values:
        if name == "cert":
            seen.append(("cert", item))
        elif name in as_flag:
            seen.append((as_flag[name], item))
for flag, item in dict.fromkeys(seen):
    print(flag)
    print(item)
EOF
)

args=()
for ((i = 0; i < ${#flags[@]}; i += 2)); do
    if [[ ${flags[i]} == cert ]]; then
        export SSL_CERT_FILE="${flags[i + 1]}"
    else
        args+=("${flags[i]}" "${flags[i + 1]}")
    fi
done

echo "install: kgnet and its dev tools into $venv (uv pip install -e '.[dev]')"
# unsafe-best-match: like pip, take the best version from any index, not the first index's
if ! "$venv/bin/uv" pip install --quiet --python "$py" --index-strategy unsafe-best-match "${args[@]}" -e '.[dev]'; then
    echo "install: uv failed (above); installing with pip (slower)"
    pip_install
fi
