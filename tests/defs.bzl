"""nsentry_test: a doctest cc_test named <name>_test from tests/<name>_test.cpp."""

load("@rules_cc//cc:defs.bzl", "cc_test")

def nsentry_test(name, privileged = False, deps = [], data = [], tags = [], **kwargs):
    """Declares //tests:<name>.

    Args:
      name: target name, <header>_test.
      privileged: the test needs real root (setns back to host namespaces, new user namespaces
        with host uids): it runs outside Bazel's sandbox, whose user namespace maps only uid 0.
      deps: extra dependencies.
      data: runtime files.
      tags: extra tags.
      **kwargs: passed to cc_test.
    """
    cc_test(
        name = name,
        srcs = [name + ".cpp"],
        deps = ["//:nsentry", ":doctest_main", ":testing"] + deps,
        data = data,
        copts = ["-DDOCTEST_CONFIG_USE_STD_HEADERS"],
        tags = tags + (["no-sandbox", "exclusive"] if privileged else []),
        **kwargs
    )
