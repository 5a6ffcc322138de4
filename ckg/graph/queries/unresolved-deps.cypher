// Dependency entries that matched no artifact at ingest, with the tags and guard they carry.
//
// Parameters:
//   artifact  (optional) Artifact uid or alias; every artifact when left out.
//
// Example:
//   ckg query unresolved-deps -p artifact=app-mlperf-inference
//
// Table: artifact, kind, tags, guard
MATCH (a:Artifact)-[:NEEDS]->(u:UnresolvedDependency)
WHERE $artifact IS NULL OR a.uid = $artifact OR a.alias = $artifact
RETURN a.alias AS artifact,
       u.kind AS kind,
       u.tags AS tags,
       u.names AS names,
       u.guard AS guard,
       u.via_variation AS via_variation,
       u.status AS status,
       u.uid AS entry
ORDER BY artifact, entry
