-- The process carrying out a submission marks it alive every few seconds. A `running`
-- submission whose heartbeat stopped (its process died) is taken over and resumed by a live
-- process, so no submission stays `running` for ever. Rows from before this column have none:
-- they count as stopped.
ALTER TABLE registry_submissions ADD COLUMN heartbeat_at TEXT;
