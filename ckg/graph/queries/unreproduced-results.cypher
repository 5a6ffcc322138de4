// Results papers report that no recorded run has reproduced yet.
// Reproduced means as in paper-vs-reproduced: a successful run that measured the result's
// metric and either declared the result ((Run)-[:REPRODUCES]->(Result): ckg run --reproduces,
// a reproduces: block) or, with no such declaration, is a run of an artifact that IMPLEMENTS
// the paper (and has no reproduces: block) with a parameter naming the result's model (and
// its dataset, where the paper reports that model and metric on several). A run of another
// model or dataset never counts. Each row names the implementing artifacts already ingested
// (empty: none yet): a to-do list.
//
// Parameters:
//   task      (optional) Task name; all tasks when left out.
//   dataset   (optional) Dataset name (its parts too: sub-datasets); all datasets when left out.
//   metric    (optional) Metric, canonical name or alias; all metrics when left out.
//
// Example:
//   ckg query unreproduced-results -p task="Question Answering" -p metric=f1
//
// Table: model, metric, value, unit, dataset, title
OPTIONAL MATCH (part:Dataset)-[:PART_OF*0..]->(:Dataset {name: $dataset})
WITH collect(part.name) AS parts
MATCH (p:Paper)-[:REPORTS]->(r:Result)
WHERE ($task IS NULL OR r.task = $task)
  AND ($dataset IS NULL OR r.dataset IN parts)
  AND ($metric IS NULL OR r.metric = $metric)
OPTIONAL MATCH (r)<-[:REPRODUCES]-(d:Run)-[:MEASURED]->(dx:Measurement)
WHERE d.status = 'ok' AND dx.metric = r.metric
WITH p, r, count(dx) AS declared
WHERE declared = 0
OPTIONAL MATCH (p)-[:REPORTS]->(twin:Result)
WHERE twin.metric = r.metric AND toLower(twin.model) = toLower(r.model)
  AND (twin.task <> r.task OR twin.dataset <> r.dataset)
WITH p, r, count(twin) AS twins
OPTIONAL MATCH (p)<-[:IMPLEMENTS]-(a:Artifact)<-[:OF]-(i:Run)-[:MEASURED]->(ix:Measurement)
WHERE i.status = 'ok' AND ix.metric = r.metric
  AND NOT coalesce(a.meta, '') CONTAINS '"reproduces":'
  AND toLower(i.params) CONTAINS toLower(': "' + r.model + '"')
  AND (twins = 0 OR toLower(i.params) CONTAINS toLower(': "' + r.dataset + '"'))
  AND NOT (i)-[:REPRODUCES]->(:Result)
WITH p, r, count(ix) AS implied
WHERE implied = 0
OPTIONAL MATCH (a:Artifact)-[:IMPLEMENTS]->(p)
WITH p, r, collect(DISTINCT a.uid) AS artifacts
RETURN p.uid AS paper,
       p.title AS title,
       r.task AS task,
       r.dataset AS dataset,
       r.model AS model,
       r.metric AS metric,
       r.value AS value,
       r.unit AS unit,
       artifacts,
       r.uid AS result
ORDER BY paper, task, dataset, model, metric, result
