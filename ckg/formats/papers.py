"""Paper identity: one key for one paper however a source links it.

A leaderboard links ``https://arxiv.org/pdf/1810.04805v2.pdf``, a README links
``arxiv.org/abs/1810.04805`` and a citation file gives ``10.48550/arXiv.1810.04805``: all are
one ``Paper`` node. :func:`paper_uid` maps a link or identifier to the node's key:

- ``arxiv:<id>`` for arXiv (abs, pdf, html, DOIs of the form ``10.48550/arXiv.<id>``,
  ``arXiv:<id>``), the version suffix dropped;
- ``doi:<doi>`` (lower case, as DOIs are case-insensitive) for ``doi.org`` links and bare DOIs;
- a canonical URL for anything else: ``https``, host without ``www.``, no fragment, no
  trailing slash, no tracking parameters; ACL Anthology and OpenReview links are reduced to
  the paper's landing page so that their PDF and abstract links agree.

:func:`repo_url` does the same for code links (``https://github.com/owner/repo``), which is
how a leaderboard's code link meets an ingested repository.

Examples
--------
>>> paper_uid("http://arxiv.org/pdf/1606.01933v1.pdf")
'arxiv:1606.01933'
>>> paper_uid("https://doi.org/10.18653/V1/P18-1157")
'doi:10.18653/v1/p18-1157'
>>> paper_uid("https://www.aclweb.org/anthology/P18-1157.pdf")
'https://aclanthology.org/P18-1157'
>>> repo_url("https://github.com/salesforce/awd-lstm-lm/tree/master/data")
'https://github.com/salesforce/awd-lstm-lm'
"""

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

_ARXIV_NEW = r"\d{4}\.\d{4,5}"
_ARXIV_OLD = r"[a-z][a-z.-]+/\d{7}"
_ARXIV_ID = rf"(?P<id>{_ARXIV_NEW}|{_ARXIV_OLD})(?:v\d+)?"
_ARXIV_URL = re.compile(
    rf"^(?:export\.)?arxiv\.org/(?:abs|pdf|html|format)/{_ARXIV_ID}(?:\.pdf)?/?$", re.I
)
_ARXIV_TEXT = re.compile(rf"^(?:arxiv:\s*|10\.48550/arxiv\.){_ARXIV_ID}$", re.I)
_DOI = re.compile(r"^(?:doi:\s*)?(?P<doi>10\.\d{4,9}/\S+)$", re.I)
_DOI_HOSTS = ("doi.org", "dx.doi.org")
_ACL = re.compile(
    r"^(?:aclweb\.org/anthology|aclanthology\.org)/(?P<id>[A-Z0-9][\w.-]*?)(?:\.pdf)?/?$"
)
_CODE_HOSTS = ("github.com", "gitlab.com", "bitbucket.org", "codeberg.org")
_TRACKING = re.compile(r"^(utm_\w+|ref|ref_src|fbclid|gclid)$")


def paper_uid(link: str | None) -> str | None:
    """The ``Paper`` key for a link or identifier, or None when ``link`` names nothing.

    Parameters
    ----------
    link
        A URL, ``arXiv:<id>``, a DOI with or without ``doi:``, or a bare arXiv id.

    Examples
    --------
    >>> paper_uid("arXiv:1706.03762v7")
    'arxiv:1706.03762'
    >>> paper_uid("https://openreview.net/pdf?id=S1NHaMW0b")
    'https://openreview.net/forum?id=S1NHaMW0b'
    >>> paper_uid("") is None
    True
    """
    text = (link or "").strip().strip("<>")
    if not text:
        return None
    bare = re.fullmatch(_ARXIV_ID, text) or _ARXIV_TEXT.match(text)
    if bare:
        return f"arxiv:{bare.group('id').lower()}"
    doi = _DOI.match(text)
    if doi:
        return _doi_uid(doi.group("doi"))
    url = canonical_url(text)
    if url is None:
        return None
    host_path = url.split("://", 1)[1]
    host = host_path.split("/", 1)[0]
    arxiv = _ARXIV_URL.match(host_path)
    if arxiv:
        return f"arxiv:{arxiv.group('id').lower()}"
    if host in _DOI_HOSTS:
        path = host_path.split("/", 1)[1] if "/" in host_path else ""
        doi = _DOI.match(path)
        return _doi_uid(doi.group("doi")) if doi else url
    acl = _ACL.match(host_path)
    if acl:
        return f"https://aclanthology.org/{acl.group('id')}"
    if host in _CODE_HOSTS:
        return repo_url(url)
    if host == "openreview.net":
        paper = dict(parse_qsl(urlsplit(url).query)).get("id")
        if paper:
            return f"https://openreview.net/forum?id={paper}"
    return url


def _doi_uid(doi: str) -> str:
    doi = doi.rstrip(".,;").lower()
    arxiv = _ARXIV_TEXT.match(doi)
    return f"arxiv:{arxiv.group('id')}" if arxiv else f"doi:{doi}"


def canonical_url(link: str) -> str | None:
    """``link`` as one canonical URL, or None when it is not an http(s) URL or host.

    >>> canonical_url("HTTP://WWW.Example.org/a/b/?utm_source=x&q=1#top")
    'https://example.org/a/b?q=1'
    """
    text = link.strip()
    if not re.match(r"^[a-z][a-z0-9+.-]*://", text, re.I):
        # "github.com/x/y" or "www.site.org/paper.pdf": a host without its scheme.
        if not re.match(r"^[\w-]+(\.[\w-]+)+(/|$)", text):
            return None
        text = "https://" + text
    parts = urlsplit(text)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    host = parts.hostname.lower().removeprefix("www.")
    if parts.port and parts.port not in (80, 443):
        host = f"{host}:{parts.port}"
    path = re.sub(r"/{2,}", "/", parts.path).rstrip("/")
    query = urlencode(
        [
            (k, v)
            for k, v in parse_qsl(parts.query, keep_blank_values=True)
            if not _TRACKING.match(k)
        ]
    )
    return urlunsplit(("https", host, path, query, ""))


def repo_url(link: str | None) -> str | None:
    """The repository a code link points into (GitHub, GitLab, Bitbucket, Codeberg), or None.

    Keeps ``owner/repo`` only and drops ``.git``, so a clone URL, a tree link and a file link
    of one repository agree. Links to other hosts come back as their :func:`canonical_url`.

    >>> repo_url("git@github.com:mlcommons/ck.git")
    'https://github.com/mlcommons/ck'
    """
    text = (link or "").strip()
    if not text:
        return None
    ssh = re.match(r"^[\w.-]+@(?P<host>[\w.-]+):(?P<path>.+)$", text)
    if ssh:
        text = f"https://{ssh.group('host')}/{ssh.group('path')}"
    url = canonical_url(text)
    if url is None:
        return None
    parts = urlsplit(url)
    if parts.hostname in _CODE_HOSTS:
        segments = [s for s in parts.path.split("/") if s][:2]
        if len(segments) == 2:
            owner, repo = segments
            return f"https://{parts.hostname}/{owner.lower()}/{repo.removesuffix('.git').lower()}"
    return url
