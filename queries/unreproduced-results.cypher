// Results papers report that no recorded run has measured yet.
// No artifact implementing the paper has a run with a measurement of that metric. Each row
// names the implementing artifacts already ingested (empty: none yet): a to-do list.
//
// Parameters:
//   task      (optional) Task name; all tasks when left out.
//   dataset   (optional) Dataset name; all datasets when left out.
//   metric    (optional) Metric, canonical name or alias; all metrics when left out.
//
// Example:
//   ckg query unreproduced-results -p task="Question Answering" -p metric=f1
MATCH (p:Paper)-[:REPORTS]->(r:Result)
WHERE ($task IS NULL OR r.task = $task)
  AND ($dataset IS NULL OR r.dataset = $dataset)
  AND ($metric IS NULL OR r.metric = $metric)
OPTIONAL MATCH (p)<-[:IMPLEMENTS]-(:Artifact)<-[:OF]-(:Run)-[:MEASURED]->(x:Measurement)
WHERE x.metric = r.metric
WITH p, r, count(x) AS measured
WHERE measured = 0
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
