"""Run in a subprocess by test_http_tokens.py: tokens and key sets made by Airflow's own code.

`python airflow_tokens.py '<json>'`: a list of steps, each
- {"env": {AIRFLOW__...}, "extras": {...}, "valid_for": s|null}: a token from the generator
  Airflow's API server uses (airflow.api_fastapi.execution_api.app._jwt_generator, configured by
  `env` as an operator's AIRFLOW__ variables configure it), with `extras` as its extra claims (the
  executor's workload token is extras {"sub": ti, "scope": "workload"}; `/run`'s execution token
  {"sub": ti, "scope": "execution"}) and its header's kid;
- {"jwks": PATH}: Airflow's JWKS of the private key at PATH (key_to_jwk_dict, as
  `trusted_jwks_url` files are made).
Prints one JSON document: the list of results ({"token", "kid"} or the JWKS).
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any


def main(steps: list[dict[str, Any]]) -> None:
    from airflow.api_fastapi.auth.tokens import _pem_to_key, key_to_jwk_dict
    from airflow.api_fastapi.execution_api.app import _jwt_generator

    out: list[Any] = []
    for step in steps:
        if "jwks" in step:
            with open(step["jwks"], "rb") as fh:
                out.append({"keys": [key_to_jwk_dict(_pem_to_key(fh.read()))]})
            continue
        saved = {k: v for k, v in os.environ.items() if k.startswith("AIRFLOW__")}
        for name in saved:
            del os.environ[name]
        os.environ.update(step["env"])
        try:
            generator = _jwt_generator()
            token = generator.generate(extras=step["extras"], valid_for=step.get("valid_for"))
            out.append({"token": token, "kid": generator.kid})
        finally:
            for name in step["env"]:
                os.environ.pop(name, None)
            os.environ.update(saved)
    print(json.dumps(out))


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
