// Artifacts carrying every one of the given tags, as CM's "search by tags" does.
//
// Parameters:
//   tags      (list) Tags that must all be present, e.g. ["get","python"] or get,python.
//
// Example:
//   ckg query artifacts-by-tag -p tags=get,python
//
// Table: alias, kind, tags
MATCH (a:Artifact)
WHERE all(tag IN $tags WHERE tag IN a.tags)
RETURN a.alias AS alias, a.kind AS kind, a.format AS format, a.tags AS tags, a.path AS path,
       a.uid AS uid
ORDER BY alias, uid
