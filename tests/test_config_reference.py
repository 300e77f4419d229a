"""config/README.md documents every key of the schema, and the README front page stays a front page."""
import re

from conftest import ROOT, SCHEMA
from specrobust.config import schema

OVERRIDE = re.compile(r"^(methods\.<name>\.(train|fr)\.|datasets\.<name>\.(train|fr)\."
                      r"|datasets\.<name>\.methods\.<name>\.)")


def schema_keys() -> list[str]:
    s = schema(SCHEMA)

    def resolve(node):
        while "$ref" in node:
            node = s["definitions"][node["$ref"].rsplit("/", 1)[1]]
        return node

    keys = []

    def walk(node, path):
        node = resolve(node)
        for sub in node.get("allOf", []):
            walk(sub, path)
        props = node.get("properties", {})
        for k, v in props.items():
            keys.append(".".join(path + [k]))
            walk(v, path + [k])
        extra = node.get("additionalProperties")
        if isinstance(extra, dict) and path and not props:
            walk(extra, path + ["<name>"])

    walk(s, [])
    return [k for k in keys if not OVERRIDE.match(k)]   # an override takes every key of its section


def test_the_configuration_reference_names_every_schema_key():
    doc = (ROOT / "config/README.md").read_text()
    documented = set(re.findall(r"`([a-z_0-9.<>]+)`", doc))
    missing = [k for k in schema_keys() if k not in documented]
    assert not missing, missing
    unknown = [k for k in documented if "." in k and k.split(".")[0] in {"train", "fr", "evaluation", "sanity",
                                                                           "analysis", "resources", "data", "tables"}
               and k not in set(schema_keys()) and "<" not in k.split(".")[-1] and not k.startswith("evaluation.eps.")
               and not k.startswith("tables.<name>.eps.")]
    assert not unknown, unknown


def test_the_readme_front_page_is_short_and_self_contained():
    text = (ROOT / "README.md").read_text()
    assert len(text) <= 8000
    assert not re.search(r"\(\.\./|`\.\./|\.\./shared", text) and "SPEC" not in text
    for doc in re.findall(r"\]\(([^)#]+)\)", text):
        assert (ROOT / doc).exists(), doc
    for page in (ROOT / "docs").glob("*.md"):
        assert "../shared" not in page.read_text() and "SPEC.md" not in page.read_text(), page.name
