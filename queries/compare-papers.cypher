// Every published result for a task, dataset and metric across papers, best first.
// Best follows the metric's direction (higher or lower is better); each row gives the model,
// the value in its canonical unit, the string as published, the paper, its date, its code
// links and the ingested artifacts that implement it.
//
// Parameters:
//   task      Task name as ingested, e.g. "Question Answering".
//   dataset   Dataset name as ingested, e.g. "SQuAD1.1".
//   metric    Metric, canonical name or alias, e.g. f1 or "F1".
//
// Example:
//   ckg query compare-papers -p task="Question Answering" -p dataset=SQuAD1.1 -p metric=f1
MATCH (t:Task {name: $task})<-[:FOR_TASK]-(r:Result)-[:ON_DATASET]->(d:Dataset {name: $dataset})
MATCH (r)-[:OF_METRIC]->(m:Metric {name: $metric})
WHERE r.value IS NOT NULL
OPTIONAL MATCH (p:Paper)-[:REPORTS]->(r)
OPTIONAL MATCH (a:Artifact)-[:IMPLEMENTS]->(p)
WITH r, m, p, collect(DISTINCT a.uid) AS artifacts
RETURN r.model AS model,
       r.value AS value,
       r.unit AS unit,
       r.stderr AS stderr,
       r.raw AS raw,
       p.title AS paper,
       p.url AS paper_url,
       coalesce(p.date, r.date) AS date,
       p.code_urls AS code,
       artifacts,
       r.uid AS result
ORDER BY CASE WHEN m.direction = 'min' THEN r.value ELSE -r.value END, model, result
