-- Schema version 6: the SHA-256 of the audience file a run is expanded from (64 lowercase hex
-- digits), recorded when the run is created. An unfinished expansion resumes only when the file
-- still has this hash, and the end of an expansion checks it once more, so a run never mixes
-- rows of two versions of its audience. NULL for runs created by schema 5 and older: their
-- unfinished expansions are not resumed (nothing can tell whether their file changed, and their
-- duplicate and broken rows were keyed in a form this version no longer writes); runs whose
-- expansion finished never read their file again and are unaffected.
ALTER TABLE runs ADD COLUMN audience_sha256 TEXT;
