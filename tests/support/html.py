"""Checking the report's HTML, and the small suite whose report the report tests read."""

from __future__ import annotations

from html.parser import HTMLParser

VOID = {"meta", "img", "br", "hr", "input", "link"}


class _Checker(HTMLParser):
    """Tracks open tags; fails on a close tag that does not match."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.imgs: list[str] = []
        self.links: list[str] = []
        self.scripts = 0

    def handle_starttag(self, tag, attrs):
        if tag == "script":
            self.scripts += 1
        if tag == "img":
            self.imgs.append(dict(attrs)["src"])
        if tag in ("a", "link") and dict(attrs).get("href"):
            self.links.append(dict(attrs)["href"])
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"unexpected </{tag}> with open {self.stack[-3:]}")
        else:
            self.stack.pop()


def check_html(text: str) -> _Checker:
    c = _Checker()
    c.feed(text)
    c.close()
    assert not c.errors, c.errors[:3]
    assert c.stack == [], c.stack
    return c


TESTS = '''
import pytest
IMG = "data/images/scene-20000000.png"
def test_pass(camaudit):
    camaudit.audit(IMG).assert_detected("circle")
def test_fail_detect(camaudit):
    camaudit.audit(IMG).assert_detected("triangle")
def test_fail_mass(camaudit):
    case = camaudit.audit("data/images/scene-20000001.png")
    case.assert_cam_mass(case.assert_detected("square"), at_least=0.999)
def test_fail_context(camaudit):
    case = camaudit.audit(IMG)
    case.assert_survives_without_context(case.assert_detected("circle"), max_drop=0.0)
def test_not_audited():
    assert False
'''
