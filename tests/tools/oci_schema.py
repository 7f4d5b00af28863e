"""Validates one OCI JSON document (read from stdin) against the image-spec schemas.

Usage: oci_schema.py SCHEMA_DIR KIND, where KIND is manifest, config, index or layout.
The schemas name each other by `id` URLs under opencontainers.org; every such URL is
answered from SCHEMA_DIR by its file name, so nothing is fetched. Prints one line per
violation and exits 1 when there is any.
"""

import json
import os
import sys

import jsonschema

FILES = {
    "manifest": "image-manifest-schema.json",
    "config": "config-schema.json",
    "index": "image-index-schema.json",
    "layout": "image-layout-schema.json",
}


def main():
    schema_dir, kind = sys.argv[1], sys.argv[2]
    loaded = {}
    for name in os.listdir(schema_dir):
        if name.endswith(".json"):
            with open(os.path.join(schema_dir, name), encoding="utf-8") as f:
                loaded[name] = json.load(f)

    def local(uri):
        name = uri.split("#", 1)[0].rstrip("/").rsplit("/", 1)[-1]
        if name not in loaded:
            raise jsonschema.RefResolutionError(f"no local schema for {uri}")
        return loaded[name]

    schema = loaded[FILES[kind]]
    resolver = jsonschema.RefResolver(
        base_uri=schema["id"], referrer=schema, handlers={"https": local, "http": local}
    )
    validator = jsonschema.Draft4Validator(schema, resolver=resolver)
    document = json.load(sys.stdin)
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    for error in errors:
        where = "/".join(str(p) for p in error.absolute_path) or "(top)"
        print(f"{where}: {error.message}")
    sys.exit(1 if errors else 0)


main()
