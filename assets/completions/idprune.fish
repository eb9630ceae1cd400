# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_idprune_global_optspecs
    string join \n q/quiet color= h/help V/version
end

function __fish_idprune_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_idprune_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_idprune_using_subcommand
    set -l cmd (__fish_idprune_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c idprune -n "__fish_idprune_needs_command" -l color -d 'When to colour diffs and summaries (`auto`: on a terminal, unless `NO_COLOR` is set)' -r -f -a "auto\t'Colour when the output is a terminal and `NO_COLOR` is unset or empty'
always\t'Always colour'
never\t'Never colour'"
complete -c idprune -n "__fish_idprune_needs_command" -s q -l quiet -d 'Print errors only: no progress, notes or warnings, and no human summary on stdout (views asked for, like `show`, `status`, `report` and `--format json`, still print)'
complete -c idprune -n "__fish_idprune_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c idprune -n "__fish_idprune_needs_command" -s V -l version -d 'Print version'
complete -c idprune -n "__fish_idprune_needs_command" -f -a "validate" -d 'Check a manifest offline: syntax, schema, duplicates, guard rails knowable offline'
complete -c idprune -n "__fish_idprune_needs_command" -f -a "plan" -d 'Resolve a manifest against the live profiles and seal the plan into a state file'
complete -c idprune -n "__fish_idprune_needs_command" -f -a "show" -d 'Render a sealed plan and its progress'
complete -c idprune -n "__fish_idprune_needs_command" -f -a "apply" -d 'Execute the approved plan; running it again resumes'
complete -c idprune -n "__fish_idprune_needs_command" -f -a "status" -d 'Counts by state, lock holder, runs and last errors'
complete -c idprune -n "__fish_idprune_needs_command" -f -a "verify" -d 'Re-read the touched profiles and report identifiers still present; exit 2 if any'
complete -c idprune -n "__fish_idprune_needs_command" -f -a "report" -d 'What Segment leaves to you: removed identifiers for downstream tools, or a warehouse check'
complete -c idprune -n "__fish_idprune_needs_command" -f -a "purge" -d 'Replace the identifier values of a finished run with keyed fingerprints (audit trail kept)'
complete -c idprune -n "__fish_idprune_needs_command" -f -a "unlock" -d 'Break a stale apply lock (refused while its holder runs on this host)'
complete -c idprune -n "__fish_idprune_needs_command" -f -a "emulator" -d 'Run the built-in Unify emulator on loopback'
complete -c idprune -n "__fish_idprune_needs_command" -f -a "demo" -d 'The whole job offline: emulator, plan, show, apply, status, verify'
complete -c idprune -n "__fish_idprune_needs_command" -f -a "guard" -d 'Find archived events that would re-add removed identifiers; exit 2 if any'
complete -c idprune -n "__fish_idprune_needs_command" -f -a "init" -d 'Write a manifest for a CSV export, pinned by sha256, `reason` left for you to fill in'
complete -c idprune -n "__fish_idprune_needs_command" -f -a "completions" -d 'Print a shell completion script to stdout'
complete -c idprune -n "__fish_idprune_needs_command" -f -a "man" -d 'Print the man page (roff) to stdout'
complete -c idprune -n "__fish_idprune_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c idprune -n "__fish_idprune_using_subcommand validate" -l format -d 'Output format (`json`: the problems and warnings as one object, exit code unchanged)' -r -f -a "text\t'For people'
json\t'One JSON object on stdout, with a `format_version`'"
complete -c idprune -n "__fish_idprune_using_subcommand validate" -l policy -d 'Also validate this policy (default: `idprune.policy.yaml` found walking up from the manifest\'s folder, as `plan` finds it)' -r -F
complete -c idprune -n "__fish_idprune_using_subcommand validate" -l color -d 'When to colour diffs and summaries (`auto`: on a terminal, unless `NO_COLOR` is set)' -r -f -a "auto\t'Colour when the output is a terminal and `NO_COLOR` is unset or empty'
always\t'Always colour'
never\t'Never colour'"
complete -c idprune -n "__fish_idprune_using_subcommand validate" -s q -l quiet -d 'Print errors only: no progress, notes or warnings, and no human summary on stdout (views asked for, like `show`, `status`, `report` and `--format json`, still print)'
complete -c idprune -n "__fish_idprune_using_subcommand validate" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c idprune -n "__fish_idprune_using_subcommand plan" -s o -l out -d 'The state file to write (default: the manifest\'s path with `.state.db`)' -r -F
complete -c idprune -n "__fish_idprune_using_subcommand plan" -l format -d 'How to print the plan' -r -f -a "text\t'For a person at a terminal: shows values unless `--redact`'
markdown\t'For a pull-request comment or job summary: redacted unless `--reveal`'
json\t'For programs: redacted unless `--reveal`'"
complete -c idprune -n "__fish_idprune_using_subcommand plan" -l redact -d 'Hide identifier values in text output; in markdown, `--redact=full` hides even the masked preview (an email\'s domain), leaving the type and a keyed fingerprint' -r -f -a "preview\t'A masked preview (an email keeps its domain) and a keyed fingerprint'
full\t'Only the type and a keyed fingerprint'"
complete -c idprune -n "__fish_idprune_using_subcommand plan" -l ttl -d 'How long the plan may be applied (`7d`, `36h`)' -r
complete -c idprune -n "__fish_idprune_using_subcommand plan" -l refresh -d '`--refresh=false`: skip the reads an entry does not need (it names its profile by `user_id` and removes another type); such items are planned `delete`, marked unverified, and an absent identifier then ends `already_absent` at apply' -r -f -a "true\t''
false\t''"
complete -c idprune -n "__fish_idprune_using_subcommand plan" -l sample -d 'With `--refresh=false`: after sealing the unverified deletes, read N of their profiles, drawn at random, by `user_id` (never by the identifier), and seal the drift found (profiles gone or lacking an identifier the plan deletes) into the plan. A round that saw drift within `--max-drift`, its 95 % upper bound above it, is followed by another N, up to 4 rounds, judged together' -r
complete -c idprune -n "__fish_idprune_using_subcommand plan" -l max-drift -d 'The sampled drift above which plan exits 1 (unless `--allow-drift`)' -r
complete -c idprune -n "__fish_idprune_using_subcommand plan" -l check-receipt -d 'Plan afresh and exit 4 when the committed receipt (default: `NAME.receipt.json` beside the manifest) no longer matches; exit 0 when it does' -r -F
complete -c idprune -n "__fish_idprune_using_subcommand plan" -l policy -d 'The team\'s rules to judge the plan by (default: `idprune.policy.yaml` found walking up from the manifest\'s folder). Its sha256 is sealed into the plan; a failed hard rule exits 1 (the state file is still written, to inspect)' -r -F
complete -c idprune -n "__fish_idprune_using_subcommand plan" -l state -d 'Where the state lives: a store URL (`s3://bucket/plans/x.state`, `gs://`, `az://`, `file://`), whose object is the truth and whose copy there is always encrypted; the state path given, if any, is then the local working copy. A plain path is the same as giving it as the state path. A state path may also be a store URL itself' -r
complete -c idprune -n "__fish_idprune_using_subcommand plan" -l state-key-file -d 'Read the state key (32 random bytes, base64) from this file instead of `IDPRUNE_STATE_KEY`. Needed for a state in a store' -r -F
complete -c idprune -n "__fish_idprune_using_subcommand plan" -l rate -d 'Requests per second for the whole space, reads and deletes together (0: unlimited)' -r
complete -c idprune -n "__fish_idprune_using_subcommand plan" -l concurrency -d 'Requests in flight at most. The window actually used is sized to the rate times the observed latency (100/s at 1 s latency: about 150), up to this cap; raise it for latencies over about 1.5 s' -r
complete -c idprune -n "__fish_idprune_using_subcommand plan" -l api-url -d 'API base URL (default: from the manifest\'s region; also `IDPRUNE_API_URL`)' -r
complete -c idprune -n "__fish_idprune_using_subcommand plan" -l token-file -d 'Read the access token from this file instead of `SEGMENT_ACCESS_TOKEN`' -r -F
complete -c idprune -n "__fish_idprune_using_subcommand plan" -l color -d 'When to colour diffs and summaries (`auto`: on a terminal, unless `NO_COLOR` is set)' -r -f -a "auto\t'Colour when the output is a terminal and `NO_COLOR` is unset or empty'
always\t'Always colour'
never\t'Never colour'"
complete -c idprune -n "__fish_idprune_using_subcommand plan" -l detailed-exitcode -d 'Exit 2 when the plan has deletions, 0 when it has none'
complete -c idprune -n "__fish_idprune_using_subcommand plan" -l reveal -d 'Show identifier values in markdown and JSON output'
complete -c idprune -n "__fish_idprune_using_subcommand plan" -l force -d 'Overwrite a state file that already holds an apply journal'
complete -c idprune -n "__fish_idprune_using_subcommand plan" -l allow-drift -d 'Accept a sampled drift above `--max-drift` (sealed and shown as accepted)'
complete -c idprune -n "__fish_idprune_using_subcommand plan" -l receipt -d 'Also write the PII-free receipt `NAME.receipt.json` beside the manifest, to commit in the pull request'
complete -c idprune -n "__fish_idprune_using_subcommand plan" -l allow-unresolved -d 'Accept a plan whose lookups mostly found no profile (without it: exit 1, since that usually means an upper-case lookup type, a wrong space or region, or old data)'
complete -c idprune -n "__fish_idprune_using_subcommand plan" -l diff -d 'Print every profile\'s diff and every exception item (without it, a plan longer than a couple of hundred lines prints its summary and exceptions; `idprune show` prints all)'
complete -c idprune -n "__fish_idprune_using_subcommand plan" -l token-stdin -d 'Read the access token from standard input'
complete -c idprune -n "__fish_idprune_using_subcommand plan" -l insecure -d 'Allow a plain-http API URL that is not on loopback'
complete -c idprune -n "__fish_idprune_using_subcommand plan" -s q -l quiet -d 'Print errors only: no progress, notes or warnings, and no human summary on stdout (views asked for, like `show`, `status`, `report` and `--format json`, still print)'
complete -c idprune -n "__fish_idprune_using_subcommand plan" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c idprune -n "__fish_idprune_using_subcommand show" -l format -d 'Output format' -r -f -a "text\t'For a person at a terminal: shows values unless `--redact`'
markdown\t'For a pull-request comment or job summary: redacted unless `--reveal`'
json\t'For programs: redacted unless `--reveal`'"
complete -c idprune -n "__fish_idprune_using_subcommand show" -l redact -d 'Hide identifier values in text output; in markdown, `--redact=full` hides even the masked preview (an email\'s domain), leaving the type and a keyed fingerprint' -r -f -a "preview\t'A masked preview (an email keeps its domain) and a keyed fingerprint'
full\t'Only the type and a keyed fingerprint'"
complete -c idprune -n "__fish_idprune_using_subcommand show" -l state -d 'Where the state lives: a store URL (`s3://bucket/plans/x.state`, `gs://`, `az://`, `file://`), whose object is the truth and whose copy there is always encrypted; the state path given, if any, is then the local working copy. A plain path is the same as giving it as the state path. A state path may also be a store URL itself' -r
complete -c idprune -n "__fish_idprune_using_subcommand show" -l state-key-file -d 'Read the state key (32 random bytes, base64) from this file instead of `IDPRUNE_STATE_KEY`. Needed for a state in a store' -r -F
complete -c idprune -n "__fish_idprune_using_subcommand show" -l color -d 'When to colour diffs and summaries (`auto`: on a terminal, unless `NO_COLOR` is set)' -r -f -a "auto\t'Colour when the output is a terminal and `NO_COLOR` is unset or empty'
always\t'Always colour'
never\t'Never colour'"
complete -c idprune -n "__fish_idprune_using_subcommand show" -l reveal -d 'Show identifier values in markdown and JSON output'
complete -c idprune -n "__fish_idprune_using_subcommand show" -s q -l quiet -d 'Print errors only: no progress, notes or warnings, and no human summary on stdout (views asked for, like `show`, `status`, `report` and `--format json`, still print)'
complete -c idprune -n "__fish_idprune_using_subcommand show" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c idprune -n "__fish_idprune_using_subcommand apply" -l approve -d 'The approved digest (`sha256:<hex>`, bare hex, or a unique prefix of 12+ hex digits)' -r
complete -c idprune -n "__fish_idprune_using_subcommand apply" -l receipt -d 'The committed receipt whose digest is approved (instead of `--approve`)' -r -F
complete -c idprune -n "__fish_idprune_using_subcommand apply" -l format -d 'How to print the final report (`json`: one object on stdout with `format_version`)' -r -f -a "text\t'For people'
json\t'One JSON object on stdout, with a `format_version`'"
complete -c idprune -n "__fish_idprune_using_subcommand apply" -l canary -d 'Send the first N deletions one at a time and re-read each profile before the fan-out; stop (exit 1) unless each target is gone and nothing else changed' -r
complete -c idprune -n "__fish_idprune_using_subcommand apply" -l canary-wait -d 'How long the canary re-reads a profile for Segment to propagate a delete' -r
complete -c idprune -n "__fish_idprune_using_subcommand apply" -l checkpoint-every -d 'With a state in a store: push the journal there this often during the run (and always on the way out), so a resume elsewhere repeats at most this much' -r
complete -c idprune -n "__fish_idprune_using_subcommand apply" -l state -d 'Where the state lives: a store URL (`s3://bucket/plans/x.state`, `gs://`, `az://`, `file://`), whose object is the truth and whose copy there is always encrypted; the state path given, if any, is then the local working copy. A plain path is the same as giving it as the state path. A state path may also be a store URL itself' -r
complete -c idprune -n "__fish_idprune_using_subcommand apply" -l state-key-file -d 'Read the state key (32 random bytes, base64) from this file instead of `IDPRUNE_STATE_KEY`. Needed for a state in a store' -r -F
complete -c idprune -n "__fish_idprune_using_subcommand apply" -l policy -d 'The policy the plan was judged by, when it was given to `plan --policy` (apply refuses, exit 4, when it is not the sealed one)' -r -F
complete -c idprune -n "__fish_idprune_using_subcommand apply" -l override -d 'Go past a failed soft policy rule (repeatable); needs `--why`. Recorded with the run. Hard rules cannot be overridden' -r
complete -c idprune -n "__fish_idprune_using_subcommand apply" -l why -d 'Why the overridden rules may be passed (recorded with the run, shown by `show` and `status`)' -r
complete -c idprune -n "__fish_idprune_using_subcommand apply" -l rate -d 'Requests per second for the whole space, reads and deletes together (0: unlimited)' -r
complete -c idprune -n "__fish_idprune_using_subcommand apply" -l concurrency -d 'Requests in flight at most. The window actually used is sized to the rate times the observed latency (100/s at 1 s latency: about 150), up to this cap; raise it for latencies over about 1.5 s' -r
complete -c idprune -n "__fish_idprune_using_subcommand apply" -l api-url -d 'API base URL (default: from the manifest\'s region; also `IDPRUNE_API_URL`)' -r
complete -c idprune -n "__fish_idprune_using_subcommand apply" -l token-file -d 'Read the access token from this file instead of `SEGMENT_ACCESS_TOKEN`' -r -F
complete -c idprune -n "__fish_idprune_using_subcommand apply" -l color -d 'When to colour diffs and summaries (`auto`: on a terminal, unless `NO_COLOR` is set)' -r -f -a "auto\t'Colour when the output is a terminal and `NO_COLOR` is unset or empty'
always\t'Always colour'
never\t'Never colour'"
complete -c idprune -n "__fish_idprune_using_subcommand apply" -l yes -d 'Apply without asking'
complete -c idprune -n "__fish_idprune_using_subcommand apply" -l retry-failed -d 'Also retry items that failed permanently (400, 404 not_found)'
complete -c idprune -n "__fish_idprune_using_subcommand apply" -l reapply -d 'Re-run a finished journal\'s deletions as a new recorded run (after a space rebuild, which does not replay deletions). Same seal and approval checks'
complete -c idprune -n "__fish_idprune_using_subcommand apply" -l token-stdin -d 'Read the access token from standard input'
complete -c idprune -n "__fish_idprune_using_subcommand apply" -l insecure -d 'Allow a plain-http API URL that is not on loopback'
complete -c idprune -n "__fish_idprune_using_subcommand apply" -s q -l quiet -d 'Print errors only: no progress, notes or warnings, and no human summary on stdout (views asked for, like `show`, `status`, `report` and `--format json`, still print)'
complete -c idprune -n "__fish_idprune_using_subcommand apply" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c idprune -n "__fish_idprune_using_subcommand status" -l format -d 'Output format' -r -f -a "text\t'For people'
json\t'For programs (items redacted unless `--reveal`)'"
complete -c idprune -n "__fish_idprune_using_subcommand status" -l state -d 'Where the state lives: a store URL (`s3://bucket/plans/x.state`, `gs://`, `az://`, `file://`), whose object is the truth and whose copy there is always encrypted; the state path given, if any, is then the local working copy. A plain path is the same as giving it as the state path. A state path may also be a store URL itself' -r
complete -c idprune -n "__fish_idprune_using_subcommand status" -l state-key-file -d 'Read the state key (32 random bytes, base64) from this file instead of `IDPRUNE_STATE_KEY`. Needed for a state in a store' -r -F
complete -c idprune -n "__fish_idprune_using_subcommand status" -l color -d 'When to colour diffs and summaries (`auto`: on a terminal, unless `NO_COLOR` is set)' -r -f -a "auto\t'Colour when the output is a terminal and `NO_COLOR` is unset or empty'
always\t'Always colour'
never\t'Never colour'"
complete -c idprune -n "__fish_idprune_using_subcommand status" -l reveal -d 'Show identifier values in JSON output'
complete -c idprune -n "__fish_idprune_using_subcommand status" -s q -l quiet -d 'Print errors only: no progress, notes or warnings, and no human summary on stdout (views asked for, like `show`, `status`, `report` and `--format json`, still print)'
complete -c idprune -n "__fish_idprune_using_subcommand status" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c idprune -n "__fish_idprune_using_subcommand verify" -l wait -d 'Poll with back-off until every removed identifier is gone or this much time has passed (`--wait` alone: 6m, beyond Segment\'s documented propagation of up to 5 minutes)' -r
complete -c idprune -n "__fish_idprune_using_subcommand verify" -l format -d 'Output format' -r -f -a "text\t'For people'
json\t'One JSON object (values redacted unless `--reveal`)'"
complete -c idprune -n "__fish_idprune_using_subcommand verify" -l state -d 'Where the state lives: a store URL (`s3://bucket/plans/x.state`, `gs://`, `az://`, `file://`), whose object is the truth and whose copy there is always encrypted; the state path given, if any, is then the local working copy. A plain path is the same as giving it as the state path. A state path may also be a store URL itself' -r
complete -c idprune -n "__fish_idprune_using_subcommand verify" -l state-key-file -d 'Read the state key (32 random bytes, base64) from this file instead of `IDPRUNE_STATE_KEY`. Needed for a state in a store' -r -F
complete -c idprune -n "__fish_idprune_using_subcommand verify" -l rate -d 'Requests per second for the whole space, reads and deletes together (0: unlimited)' -r
complete -c idprune -n "__fish_idprune_using_subcommand verify" -l concurrency -d 'Requests in flight at most. The window actually used is sized to the rate times the observed latency (100/s at 1 s latency: about 150), up to this cap; raise it for latencies over about 1.5 s' -r
complete -c idprune -n "__fish_idprune_using_subcommand verify" -l api-url -d 'API base URL (default: from the manifest\'s region; also `IDPRUNE_API_URL`)' -r
complete -c idprune -n "__fish_idprune_using_subcommand verify" -l token-file -d 'Read the access token from this file instead of `SEGMENT_ACCESS_TOKEN`' -r -F
complete -c idprune -n "__fish_idprune_using_subcommand verify" -l color -d 'When to colour diffs and summaries (`auto`: on a terminal, unless `NO_COLOR` is set)' -r -f -a "auto\t'Colour when the output is a terminal and `NO_COLOR` is unset or empty'
always\t'Always colour'
never\t'Never colour'"
complete -c idprune -n "__fish_idprune_using_subcommand verify" -l redact -d 'Hide identifier values'
complete -c idprune -n "__fish_idprune_using_subcommand verify" -l reveal -d 'Show identifier values in JSON output'
complete -c idprune -n "__fish_idprune_using_subcommand verify" -l token-stdin -d 'Read the access token from standard input'
complete -c idprune -n "__fish_idprune_using_subcommand verify" -l insecure -d 'Allow a plain-http API URL that is not on loopback'
complete -c idprune -n "__fish_idprune_using_subcommand verify" -s q -l quiet -d 'Print errors only: no progress, notes or warnings, and no human summary on stdout (views asked for, like `show`, `status`, `report` and `--format json`, still print)'
complete -c idprune -n "__fish_idprune_using_subcommand verify" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c idprune -n "__fish_idprune_using_subcommand report" -l only -d 'With `--results`: only these rows (`failed`)' -r -f -a "failed\t'Items whose deletion failed'"
complete -c idprune -n "__fish_idprune_using_subcommand report" -l format -d 'Output format of `--downstream` and `--results`' -r -f -a "csv\t'Rows with a header (`--downstream`: `seq,user_id,type,id,state`)'
json\t'One JSON object'"
complete -c idprune -n "__fish_idprune_using_subcommand report" -l schema -d 'The warehouse schema of Profiles Sync\'s tables (with `--sql`); `project.dataset` or `database.schema` also work' -r
complete -c idprune -n "__fish_idprune_using_subcommand report" -l dialect -d 'The warehouse\'s SQL dialect (string and identifier quoting differ)' -r -f -a "snowflake\t'`\'…\'` with `\\` and `\'` escaped by a backslash (backslash escapes are on by default in single-quoted string constants); `"…"` identifiers'
bigquery\t'`\'…\'` with backslash escapes (`\'\'` is not a quote there); `` `…` `` identifiers'
redshift\t'`\'…\'` with `\'` doubled and `\\` doubled (Redshift reads backslash escapes in literals, as its `QUOTE_LITERAL` shows); `"…"` identifiers'
postgres\t'`\'…\'` with `\'` doubled (`standard_conforming_strings`, on by default); a value holding `\\` or a control character becomes an `E\'…\'` string, which reads the same whatever that setting is; `"…"` identifiers'
databricks\t'`\'…\'` with backslash escapes (adjacent literals concatenate, so `\'\'` is not a quote); `` `…` `` identifiers'
duckdb\t'`\'…\'` with `\'` doubled and nothing else escaped (a DuckDB string constant reads `\\` and control characters as themselves); `"…"` identifiers. For Profiles Sync tables exported to Parquet or CSV files and queried on a laptop'"
complete -c idprune -n "__fish_idprune_using_subcommand report" -l csv -d 'Write the removed identifiers to this CSV and print a query that loads and joins it (for more than 1,000 identifiers; a million is fine)' -r -F
complete -c idprune -n "__fish_idprune_using_subcommand report" -l discover -d 'Instead: queries listing the profiles that carry a TYPE identifier LIKE PATTERN (`email:%@import.invalid`; repeatable, any matches), each with a user_id it keeps, to export as CSV for `idprune init --from-csv`' -r
complete -c idprune -n "__fish_idprune_using_subcommand report" -l discover-csv -d 'Instead: the same queries for the identifiers listed in this CSV (`id_type,id_value` with a header), which the warehouse loads and joins' -r -F
complete -c idprune -n "__fish_idprune_using_subcommand report" -l state -d 'Where the state lives: a store URL (`s3://bucket/plans/x.state`, `gs://`, `az://`, `file://`), whose object is the truth and whose copy there is always encrypted; the state path given, if any, is then the local working copy. A plain path is the same as giving it as the state path. A state path may also be a store URL itself' -r
complete -c idprune -n "__fish_idprune_using_subcommand report" -l state-key-file -d 'Read the state key (32 random bytes, base64) from this file instead of `IDPRUNE_STATE_KEY`. Needed for a state in a store' -r -F
complete -c idprune -n "__fish_idprune_using_subcommand report" -l color -d 'When to colour diffs and summaries (`auto`: on a terminal, unless `NO_COLOR` is set)' -r -f -a "auto\t'Colour when the output is a terminal and `NO_COLOR` is unset or empty'
always\t'Always colour'
never\t'Never colour'"
complete -c idprune -n "__fish_idprune_using_subcommand report" -l downstream -d 'The removed identifiers, for clean-up in downstream destinations'
complete -c idprune -n "__fish_idprune_using_subcommand report" -l sql -d 'A warehouse query checking that Profiles Sync received the REMOVED rows'
complete -c idprune -n "__fish_idprune_using_subcommand report" -l results -d 'One row per item: seq, type, value (masked unless --reveal), action, state, attempts, HTTP status, Segment\'s error code and message, request id, last attempt time, origin'
complete -c idprune -n "__fish_idprune_using_subcommand report" -l reveal -d 'With `--results`: show identifier values instead of masked previews'
complete -c idprune -n "__fish_idprune_using_subcommand report" -s q -l quiet -d 'Print errors only: no progress, notes or warnings, and no human summary on stdout (views asked for, like `show`, `status`, `report` and `--format json`, still print)'
complete -c idprune -n "__fish_idprune_using_subcommand report" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c idprune -n "__fish_idprune_using_subcommand purge" -l key-file -d 'Read the fingerprint key from this file instead of `IDPRUNE_FINGERPRINT_KEY`' -r -F
complete -c idprune -n "__fish_idprune_using_subcommand purge" -l state -d 'Where the state lives: a store URL (`s3://bucket/plans/x.state`, `gs://`, `az://`, `file://`), whose object is the truth and whose copy there is always encrypted; the state path given, if any, is then the local working copy. A plain path is the same as giving it as the state path. A state path may also be a store URL itself' -r
complete -c idprune -n "__fish_idprune_using_subcommand purge" -l state-key-file -d 'Read the state key (32 random bytes, base64) from this file instead of `IDPRUNE_STATE_KEY`. Needed for a state in a store' -r -F
complete -c idprune -n "__fish_idprune_using_subcommand purge" -l color -d 'When to colour diffs and summaries (`auto`: on a terminal, unless `NO_COLOR` is set)' -r -f -a "auto\t'Colour when the output is a terminal and `NO_COLOR` is unset or empty'
always\t'Always colour'
never\t'Never colour'"
complete -c idprune -n "__fish_idprune_using_subcommand purge" -s q -l quiet -d 'Print errors only: no progress, notes or warnings, and no human summary on stdout (views asked for, like `show`, `status`, `report` and `--format json`, still print)'
complete -c idprune -n "__fish_idprune_using_subcommand purge" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c idprune -n "__fish_idprune_using_subcommand unlock" -l state -d 'Where the state lives: a store URL (`s3://bucket/plans/x.state`, `gs://`, `az://`, `file://`), whose object is the truth and whose copy there is always encrypted; the state path given, if any, is then the local working copy. A plain path is the same as giving it as the state path. A state path may also be a store URL itself' -r
complete -c idprune -n "__fish_idprune_using_subcommand unlock" -l state-key-file -d 'Read the state key (32 random bytes, base64) from this file instead of `IDPRUNE_STATE_KEY`. Needed for a state in a store' -r -F
complete -c idprune -n "__fish_idprune_using_subcommand unlock" -l color -d 'When to colour diffs and summaries (`auto`: on a terminal, unless `NO_COLOR` is set)' -r -f -a "auto\t'Colour when the output is a terminal and `NO_COLOR` is unset or empty'
always\t'Always colour'
never\t'Never colour'"
complete -c idprune -n "__fish_idprune_using_subcommand unlock" -s q -l quiet -d 'Print errors only: no progress, notes or warnings, and no human summary on stdout (views asked for, like `show`, `status`, `report` and `--format json`, still print)'
complete -c idprune -n "__fish_idprune_using_subcommand unlock" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c idprune -n "__fish_idprune_using_subcommand emulator" -l listen -d 'Address to listen on; must be loopback. Port 0 picks a free port' -r
complete -c idprune -n "__fish_idprune_using_subcommand emulator" -l seed -d 'JSON file with the space, optional token and profiles (empty space when absent)' -r -F
complete -c idprune -n "__fish_idprune_using_subcommand emulator" -l space-rate -d 'Requests per second for the whole space, reads and deletes together; 0 = unlimited' -r
complete -c idprune -n "__fish_idprune_using_subcommand emulator" -l limiter -d 'How the space limit counts: a strict sliding 1 s window (the strictest reading of Segment\'s docs), fixed clock-aligned seconds, or a token bucket of a second\'s tokens. A refused request uses none of the budget' -r -f -a "sliding-window\t'At most N accepted requests in any 1 s window (the strictest reading)'
fixed-window\t'At most N accepted requests per clock-aligned second (a burst may straddle a boundary)'
token-bucket\t'A bucket of N tokens refilled at N per second (forgives a burst of a full second)'"
complete -c idprune -n "__fish_idprune_using_subcommand emulator" -l transit-jitter-ms -d 'Each request waits uniformly in [0, N) milliseconds before the limiter sees it (network delay the client cannot see: arrival order and spacing differ from sending)' -r
complete -c idprune -n "__fish_idprune_using_subcommand emulator" -l profile-rate -d 'Deletes per second for a single profile; 0 = unlimited' -r
complete -c idprune -n "__fish_idprune_using_subcommand emulator" -l latency-ms -d 'Added latency per request, in milliseconds' -r
complete -c idprune -n "__fish_idprune_using_subcommand emulator" -l latency-jitter -d 'Latency is uniform within ±PCT% of --latency-ms' -r
complete -c idprune -n "__fish_idprune_using_subcommand emulator" -l fail-rate -d 'Fraction (0..1) of requests answered 500/502/503' -r
complete -c idprune -n "__fish_idprune_using_subcommand emulator" -l hang-rate -d 'Fraction (0..1) of requests that sleep --hang-ms before answering' -r
complete -c idprune -n "__fish_idprune_using_subcommand emulator" -l hang-ms -d 'How long a hanging request sleeps, in milliseconds' -r
complete -c idprune -n "__fish_idprune_using_subcommand emulator" -l malformed-rate -d 'Fraction (0..1) of 200/404 answers whose body is cut short (invalid JSON)' -r
complete -c idprune -n "__fish_idprune_using_subcommand emulator" -l lost-ack-rate -d 'Fraction (0..1) of successful deletes that are applied but answered 500' -r
complete -c idprune -n "__fish_idprune_using_subcommand emulator" -l propagation-ms -d 'Deleted identifiers keep showing in reads (and resolving lookups) for N milliseconds' -r
complete -c idprune -n "__fish_idprune_using_subcommand emulator" -l random-seed -d 'Seed of the fault-injection RNG, for a reproducible run (default: from the clock)' -r
complete -c idprune -n "__fish_idprune_using_subcommand emulator" -l retry-after -d 'Send `Retry-After: SECS` with every 429 (Segment documents none, so off by default)' -r
complete -c idprune -n "__fish_idprune_using_subcommand emulator" -l unsupported-type -d 'Answer deletes of this identifier type with 400 `unsupported_eid_type` (Segment\'s answer for a type it cannot delete); repeatable. A permanent failure to test with' -r
complete -c idprune -n "__fish_idprune_using_subcommand emulator" -l color -d 'When to colour diffs and summaries (`auto`: on a terminal, unless `NO_COLOR` is set)' -r -f -a "auto\t'Colour when the output is a terminal and `NO_COLOR` is unset or empty'
always\t'Always colour'
never\t'Never colour'"
complete -c idprune -n "__fish_idprune_using_subcommand emulator" -l not-activated -d 'Answer every delete with 403 `forbidden` (the feature is not activated for the space)'
complete -c idprune -n "__fish_idprune_using_subcommand emulator" -l ineffective-deletes -d 'Answer deletes 200 `success` without removing anything (a service that behaves differently from its documentation; what `apply --canary` guards against)'
complete -c idprune -n "__fish_idprune_using_subcommand emulator" -l lowercase-lookups -d 'Lookups holding an upper-case character find no profile (Segment: "queries with an external_id in other casing won\'t return any profiles"), even when stored that way'
complete -c idprune -n "__fish_idprune_using_subcommand emulator" -s q -l quiet -d 'Print errors only: no progress, notes or warnings, and no human summary on stdout (views asked for, like `show`, `status`, `report` and `--format json`, still print)'
complete -c idprune -n "__fish_idprune_using_subcommand emulator" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c idprune -n "__fish_idprune_using_subcommand demo" -l dir -d 'Keep the demo\'s working directory (its manifest and state file) here instead of a temporary one' -r -F
complete -c idprune -n "__fish_idprune_using_subcommand demo" -l color -d 'When to colour diffs and summaries (`auto`: on a terminal, unless `NO_COLOR` is set)' -r -f -a "auto\t'Colour when the output is a terminal and `NO_COLOR` is unset or empty'
always\t'Always colour'
never\t'Never colour'"
complete -c idprune -n "__fish_idprune_using_subcommand demo" -s q -l quiet -d 'Print errors only: no progress, notes or warnings, and no human summary on stdout (views asked for, like `show`, `status`, `report` and `--format json`, still print)'
complete -c idprune -n "__fish_idprune_using_subcommand demo" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c idprune -n "__fish_idprune_using_subcommand guard" -l archive -d 'Event Archive exports: gzipped or plain JSON-lines files, or directories walked recursively (`segment-logs/<source-id>/<received-day>/...`)' -r -F
complete -c idprune -n "__fish_idprune_using_subcommand guard" -l write-filtered -d 'Write copies without the matching events here (same layout, same compression; malformed lines are kept unchanged). Refuses to replace existing files' -r -F
complete -c idprune -n "__fish_idprune_using_subcommand guard" -l format -d 'Output format' -r -f -a "text\t'For people'
json\t'One JSON object (no identifier values)'"
complete -c idprune -n "__fish_idprune_using_subcommand guard" -l state -d 'Where the state lives: a store URL (`s3://bucket/plans/x.state`, `gs://`, `az://`, `file://`), whose object is the truth and whose copy there is always encrypted; the state path given, if any, is then the local working copy. A plain path is the same as giving it as the state path. A state path may also be a store URL itself' -r
complete -c idprune -n "__fish_idprune_using_subcommand guard" -l state-key-file -d 'Read the state key (32 random bytes, base64) from this file instead of `IDPRUNE_STATE_KEY`. Needed for a state in a store' -r -F
complete -c idprune -n "__fish_idprune_using_subcommand guard" -l color -d 'When to colour diffs and summaries (`auto`: on a terminal, unless `NO_COLOR` is set)' -r -f -a "auto\t'Colour when the output is a terminal and `NO_COLOR` is unset or empty'
always\t'Always colour'
never\t'Never colour'"
complete -c idprune -n "__fish_idprune_using_subcommand guard" -l follow-symlinks -d 'Follow symbolic links inside an archive directory: scan the files they point to and walk the folders (a link looping back is skipped). By default such links are skipped, since a planted one could point anywhere; paths given to --archive are always read'
complete -c idprune -n "__fish_idprune_using_subcommand guard" -s q -l quiet -d 'Print errors only: no progress, notes or warnings, and no human summary on stdout (views asked for, like `show`, `status`, `report` and `--format json`, still print)'
complete -c idprune -n "__fish_idprune_using_subcommand guard" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c idprune -n "__fish_idprune_using_subcommand init" -l from-csv -d 'The CSV export (for example from `report --sql --discover`)' -r -F
complete -c idprune -n "__fish_idprune_using_subcommand init" -l profile-column -d 'The column holding each row\'s profile lookup (`user_id`, `segment_id`, or any type)' -r
complete -c idprune -n "__fish_idprune_using_subcommand init" -l remove-column -d 'A column of identifiers to remove; its header is the identifier type. Repeatable' -r
complete -c idprune -n "__fish_idprune_using_subcommand init" -s o -l out -d 'The manifest to write (default: the CSV\'s path with `.yaml`). Must be in a directory that holds the CSV' -r -F
complete -c idprune -n "__fish_idprune_using_subcommand init" -l space -d 'The Unify space id (left as a placeholder for you to fill in when absent)' -r
complete -c idprune -n "__fish_idprune_using_subcommand init" -l region -d 'The space\'s region' -r -f -a "us\t'`profiles.segment.com`'
eu\t'`profiles.euw1.segment.com`'"
complete -c idprune -n "__fish_idprune_using_subcommand init" -l color -d 'When to colour diffs and summaries (`auto`: on a terminal, unless `NO_COLOR` is set)' -r -f -a "auto\t'Colour when the output is a terminal and `NO_COLOR` is unset or empty'
always\t'Always colour'
never\t'Never colour'"
complete -c idprune -n "__fish_idprune_using_subcommand init" -l force -d 'Replace an existing manifest'
complete -c idprune -n "__fish_idprune_using_subcommand init" -s q -l quiet -d 'Print errors only: no progress, notes or warnings, and no human summary on stdout (views asked for, like `show`, `status`, `report` and `--format json`, still print)'
complete -c idprune -n "__fish_idprune_using_subcommand init" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c idprune -n "__fish_idprune_using_subcommand completions" -l color -d 'When to colour diffs and summaries (`auto`: on a terminal, unless `NO_COLOR` is set)' -r -f -a "auto\t'Colour when the output is a terminal and `NO_COLOR` is unset or empty'
always\t'Always colour'
never\t'Never colour'"
complete -c idprune -n "__fish_idprune_using_subcommand completions" -s q -l quiet -d 'Print errors only: no progress, notes or warnings, and no human summary on stdout (views asked for, like `show`, `status`, `report` and `--format json`, still print)'
complete -c idprune -n "__fish_idprune_using_subcommand completions" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c idprune -n "__fish_idprune_using_subcommand man" -l color -d 'When to colour diffs and summaries (`auto`: on a terminal, unless `NO_COLOR` is set)' -r -f -a "auto\t'Colour when the output is a terminal and `NO_COLOR` is unset or empty'
always\t'Always colour'
never\t'Never colour'"
complete -c idprune -n "__fish_idprune_using_subcommand man" -s q -l quiet -d 'Print errors only: no progress, notes or warnings, and no human summary on stdout (views asked for, like `show`, `status`, `report` and `--format json`, still print)'
complete -c idprune -n "__fish_idprune_using_subcommand man" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c idprune -n "__fish_idprune_using_subcommand help; and not __fish_seen_subcommand_from validate plan show apply status verify report purge unlock emulator demo guard init completions man help" -f -a "validate" -d 'Check a manifest offline: syntax, schema, duplicates, guard rails knowable offline'
complete -c idprune -n "__fish_idprune_using_subcommand help; and not __fish_seen_subcommand_from validate plan show apply status verify report purge unlock emulator demo guard init completions man help" -f -a "plan" -d 'Resolve a manifest against the live profiles and seal the plan into a state file'
complete -c idprune -n "__fish_idprune_using_subcommand help; and not __fish_seen_subcommand_from validate plan show apply status verify report purge unlock emulator demo guard init completions man help" -f -a "show" -d 'Render a sealed plan and its progress'
complete -c idprune -n "__fish_idprune_using_subcommand help; and not __fish_seen_subcommand_from validate plan show apply status verify report purge unlock emulator demo guard init completions man help" -f -a "apply" -d 'Execute the approved plan; running it again resumes'
complete -c idprune -n "__fish_idprune_using_subcommand help; and not __fish_seen_subcommand_from validate plan show apply status verify report purge unlock emulator demo guard init completions man help" -f -a "status" -d 'Counts by state, lock holder, runs and last errors'
complete -c idprune -n "__fish_idprune_using_subcommand help; and not __fish_seen_subcommand_from validate plan show apply status verify report purge unlock emulator demo guard init completions man help" -f -a "verify" -d 'Re-read the touched profiles and report identifiers still present; exit 2 if any'
complete -c idprune -n "__fish_idprune_using_subcommand help; and not __fish_seen_subcommand_from validate plan show apply status verify report purge unlock emulator demo guard init completions man help" -f -a "report" -d 'What Segment leaves to you: removed identifiers for downstream tools, or a warehouse check'
complete -c idprune -n "__fish_idprune_using_subcommand help; and not __fish_seen_subcommand_from validate plan show apply status verify report purge unlock emulator demo guard init completions man help" -f -a "purge" -d 'Replace the identifier values of a finished run with keyed fingerprints (audit trail kept)'
complete -c idprune -n "__fish_idprune_using_subcommand help; and not __fish_seen_subcommand_from validate plan show apply status verify report purge unlock emulator demo guard init completions man help" -f -a "unlock" -d 'Break a stale apply lock (refused while its holder runs on this host)'
complete -c idprune -n "__fish_idprune_using_subcommand help; and not __fish_seen_subcommand_from validate plan show apply status verify report purge unlock emulator demo guard init completions man help" -f -a "emulator" -d 'Run the built-in Unify emulator on loopback'
complete -c idprune -n "__fish_idprune_using_subcommand help; and not __fish_seen_subcommand_from validate plan show apply status verify report purge unlock emulator demo guard init completions man help" -f -a "demo" -d 'The whole job offline: emulator, plan, show, apply, status, verify'
complete -c idprune -n "__fish_idprune_using_subcommand help; and not __fish_seen_subcommand_from validate plan show apply status verify report purge unlock emulator demo guard init completions man help" -f -a "guard" -d 'Find archived events that would re-add removed identifiers; exit 2 if any'
complete -c idprune -n "__fish_idprune_using_subcommand help; and not __fish_seen_subcommand_from validate plan show apply status verify report purge unlock emulator demo guard init completions man help" -f -a "init" -d 'Write a manifest for a CSV export, pinned by sha256, `reason` left for you to fill in'
complete -c idprune -n "__fish_idprune_using_subcommand help; and not __fish_seen_subcommand_from validate plan show apply status verify report purge unlock emulator demo guard init completions man help" -f -a "completions" -d 'Print a shell completion script to stdout'
complete -c idprune -n "__fish_idprune_using_subcommand help; and not __fish_seen_subcommand_from validate plan show apply status verify report purge unlock emulator demo guard init completions man help" -f -a "man" -d 'Print the man page (roff) to stdout'
complete -c idprune -n "__fish_idprune_using_subcommand help; and not __fish_seen_subcommand_from validate plan show apply status verify report purge unlock emulator demo guard init completions man help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
