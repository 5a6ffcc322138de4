// Every artifact an artifact depends on, directly or through others (static closure).
// Guards are not evaluated here: `ckg plan` does that for a concrete environment.
//
// Parameters:
//   artifact  Artifact uid or alias, e.g. app-image-classification-onnx-py.
//
// Example:
//   ckg query dependency-closure -p artifact=app-image-classification-onnx-py
//
// Table: alias, kind, tags
MATCH (a:Artifact)
WHERE a.uid = $artifact OR a.alias = $artifact
MATCH (a)-[:DEPENDS_ON*1..]->(d:Artifact)
WITH DISTINCT d
RETURN d.alias AS alias, d.kind AS kind, d.tags AS tags, d.uid AS uid
ORDER BY alias, uid
