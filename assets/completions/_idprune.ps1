
using namespace System.Management.Automation
using namespace System.Management.Automation.Language

Register-ArgumentCompleter -Native -CommandName 'idprune' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)

    $commandElements = $commandAst.CommandElements
    $command = @(
        'idprune'
        for ($i = 1; $i -lt $commandElements.Count; $i++) {
            $element = $commandElements[$i]
            if ($element -isnot [StringConstantExpressionAst] -or
                $element.StringConstantType -ne [StringConstantType]::BareWord -or
                $element.Value.StartsWith('-') -or
                $element.Value -eq $wordToComplete) {
                break
        }
        $element.Value
    }) -join ';'

    $completions = @(switch ($command) {
        'idprune' {
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to colour diffs and summaries (`auto`: on a terminal, unless `NO_COLOR` is set)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print errors only: no progress, notes or warnings, and no human summary on stdout (views asked for, like `show`, `status`, `report` and `--format json`, still print)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print errors only: no progress, notes or warnings, and no human summary on stdout (views asked for, like `show`, `status`, `report` and `--format json`, still print)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('validate', 'validate', [CompletionResultType]::ParameterValue, 'Check a manifest offline: syntax, schema, duplicates, guard rails knowable offline')
            [CompletionResult]::new('plan', 'plan', [CompletionResultType]::ParameterValue, 'Resolve a manifest against the live profiles and seal the plan into a state file')
            [CompletionResult]::new('show', 'show', [CompletionResultType]::ParameterValue, 'Render a sealed plan and its progress')
            [CompletionResult]::new('apply', 'apply', [CompletionResultType]::ParameterValue, 'Execute the approved plan; running it again resumes')
            [CompletionResult]::new('status', 'status', [CompletionResultType]::ParameterValue, 'Counts by state, lock holder, runs and last errors')
            [CompletionResult]::new('verify', 'verify', [CompletionResultType]::ParameterValue, 'Re-read the touched profiles and report identifiers still present; exit 2 if any')
            [CompletionResult]::new('report', 'report', [CompletionResultType]::ParameterValue, 'What Segment leaves to you: removed identifiers for downstream tools, or a warehouse check')
            [CompletionResult]::new('purge', 'purge', [CompletionResultType]::ParameterValue, 'Replace the identifier values of a finished run with keyed fingerprints (audit trail kept)')
            [CompletionResult]::new('unlock', 'unlock', [CompletionResultType]::ParameterValue, 'Break a stale apply lock (refused while its holder runs on this host)')
            [CompletionResult]::new('emulator', 'emulator', [CompletionResultType]::ParameterValue, 'Run the built-in Unify emulator on loopback')
            [CompletionResult]::new('demo', 'demo', [CompletionResultType]::ParameterValue, 'The whole job offline: emulator, plan, show, apply, status, verify')
            [CompletionResult]::new('guard', 'guard', [CompletionResultType]::ParameterValue, 'Find archived events that would re-add removed identifiers; exit 2 if any')
            [CompletionResult]::new('init', 'init', [CompletionResultType]::ParameterValue, 'Write a manifest for a CSV export, pinned by sha256, `reason` left for you to fill in')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print a shell completion script to stdout')
            [CompletionResult]::new('man', 'man', [CompletionResultType]::ParameterValue, 'Print the man page (roff) to stdout')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'idprune;validate' {
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Output format (`json`: the problems and warnings as one object, exit code unchanged)')
            [CompletionResult]::new('--policy', '--policy', [CompletionResultType]::ParameterName, 'Also validate this policy (default: `idprune.policy.yaml` found walking up from the manifest''s folder, as `plan` finds it)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to colour diffs and summaries (`auto`: on a terminal, unless `NO_COLOR` is set)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print errors only: no progress, notes or warnings, and no human summary on stdout (views asked for, like `show`, `status`, `report` and `--format json`, still print)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print errors only: no progress, notes or warnings, and no human summary on stdout (views asked for, like `show`, `status`, `report` and `--format json`, still print)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'idprune;plan' {
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'The state file to write (default: the manifest''s path with `.state.db`)')
            [CompletionResult]::new('--out', '--out', [CompletionResultType]::ParameterName, 'The state file to write (default: the manifest''s path with `.state.db`)')
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'How to print the plan')
            [CompletionResult]::new('--redact', '--redact', [CompletionResultType]::ParameterName, 'Hide identifier values in text output; in markdown, `--redact=full` hides even the masked preview (an email''s domain), leaving the type and a keyed fingerprint')
            [CompletionResult]::new('--ttl', '--ttl', [CompletionResultType]::ParameterName, 'How long the plan may be applied (`7d`, `36h`)')
            [CompletionResult]::new('--refresh', '--refresh', [CompletionResultType]::ParameterName, '`--refresh=false`: skip the reads an entry does not need (it names its profile by `user_id` and removes another type); such items are planned `delete`, marked unverified, and an absent identifier then ends `already_absent` at apply')
            [CompletionResult]::new('--sample', '--sample', [CompletionResultType]::ParameterName, 'With `--refresh=false`: after sealing the unverified deletes, read N of their profiles, drawn at random, by `user_id` (never by the identifier), and seal the drift found (profiles gone or lacking an identifier the plan deletes) into the plan. A round that saw drift within `--max-drift`, its 95 % upper bound above it, is followed by another N, up to 4 rounds, judged together')
            [CompletionResult]::new('--max-drift', '--max-drift', [CompletionResultType]::ParameterName, 'The sampled drift above which plan exits 1 (unless `--allow-drift`)')
            [CompletionResult]::new('--check-receipt', '--check-receipt', [CompletionResultType]::ParameterName, 'Plan afresh and exit 4 when the committed receipt (default: `NAME.receipt.json` beside the manifest) no longer matches; exit 0 when it does')
            [CompletionResult]::new('--policy', '--policy', [CompletionResultType]::ParameterName, 'The team''s rules to judge the plan by (default: `idprune.policy.yaml` found walking up from the manifest''s folder). Its sha256 is sealed into the plan; a failed hard rule exits 1 (the state file is still written, to inspect)')
            [CompletionResult]::new('--state', '--state', [CompletionResultType]::ParameterName, 'Where the state lives: a store URL (`s3://bucket/plans/x.state`, `gs://`, `az://`, `file://`), whose object is the truth and whose copy there is always encrypted; the state path given, if any, is then the local working copy. A plain path is the same as giving it as the state path. A state path may also be a store URL itself')
            [CompletionResult]::new('--state-key-file', '--state-key-file', [CompletionResultType]::ParameterName, 'Read the state key (32 random bytes, base64) from this file instead of `IDPRUNE_STATE_KEY`. Needed for a state in a store')
            [CompletionResult]::new('--rate', '--rate', [CompletionResultType]::ParameterName, 'Requests per second for the whole space, reads and deletes together (0: unlimited)')
            [CompletionResult]::new('--concurrency', '--concurrency', [CompletionResultType]::ParameterName, 'Requests in flight at most. The window actually used is sized to the rate times the observed latency (100/s at 1 s latency: about 150), up to this cap; raise it for latencies over about 1.5 s')
            [CompletionResult]::new('--api-url', '--api-url', [CompletionResultType]::ParameterName, 'API base URL (default: from the manifest''s region; also `IDPRUNE_API_URL`)')
            [CompletionResult]::new('--token-file', '--token-file', [CompletionResultType]::ParameterName, 'Read the access token from this file instead of `SEGMENT_ACCESS_TOKEN`')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to colour diffs and summaries (`auto`: on a terminal, unless `NO_COLOR` is set)')
            [CompletionResult]::new('--detailed-exitcode', '--detailed-exitcode', [CompletionResultType]::ParameterName, 'Exit 2 when the plan has deletions, 0 when it has none')
            [CompletionResult]::new('--reveal', '--reveal', [CompletionResultType]::ParameterName, 'Show identifier values in markdown and JSON output')
            [CompletionResult]::new('--force', '--force', [CompletionResultType]::ParameterName, 'Overwrite a state file that already holds an apply journal')
            [CompletionResult]::new('--allow-drift', '--allow-drift', [CompletionResultType]::ParameterName, 'Accept a sampled drift above `--max-drift` (sealed and shown as accepted)')
            [CompletionResult]::new('--receipt', '--receipt', [CompletionResultType]::ParameterName, 'Also write the PII-free receipt `NAME.receipt.json` beside the manifest, to commit in the pull request')
            [CompletionResult]::new('--allow-unresolved', '--allow-unresolved', [CompletionResultType]::ParameterName, 'Accept a plan whose lookups mostly found no profile (without it: exit 1, since that usually means an upper-case lookup type, a wrong space or region, or old data)')
            [CompletionResult]::new('--diff', '--diff', [CompletionResultType]::ParameterName, 'Print every profile''s diff and every exception item (without it, a plan longer than a couple of hundred lines prints its summary and exceptions; `idprune show` prints all)')
            [CompletionResult]::new('--token-stdin', '--token-stdin', [CompletionResultType]::ParameterName, 'Read the access token from standard input')
            [CompletionResult]::new('--insecure', '--insecure', [CompletionResultType]::ParameterName, 'Allow a plain-http API URL that is not on loopback')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print errors only: no progress, notes or warnings, and no human summary on stdout (views asked for, like `show`, `status`, `report` and `--format json`, still print)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print errors only: no progress, notes or warnings, and no human summary on stdout (views asked for, like `show`, `status`, `report` and `--format json`, still print)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'idprune;show' {
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--redact', '--redact', [CompletionResultType]::ParameterName, 'Hide identifier values in text output; in markdown, `--redact=full` hides even the masked preview (an email''s domain), leaving the type and a keyed fingerprint')
            [CompletionResult]::new('--state', '--state', [CompletionResultType]::ParameterName, 'Where the state lives: a store URL (`s3://bucket/plans/x.state`, `gs://`, `az://`, `file://`), whose object is the truth and whose copy there is always encrypted; the state path given, if any, is then the local working copy. A plain path is the same as giving it as the state path. A state path may also be a store URL itself')
            [CompletionResult]::new('--state-key-file', '--state-key-file', [CompletionResultType]::ParameterName, 'Read the state key (32 random bytes, base64) from this file instead of `IDPRUNE_STATE_KEY`. Needed for a state in a store')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to colour diffs and summaries (`auto`: on a terminal, unless `NO_COLOR` is set)')
            [CompletionResult]::new('--reveal', '--reveal', [CompletionResultType]::ParameterName, 'Show identifier values in markdown and JSON output')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print errors only: no progress, notes or warnings, and no human summary on stdout (views asked for, like `show`, `status`, `report` and `--format json`, still print)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print errors only: no progress, notes or warnings, and no human summary on stdout (views asked for, like `show`, `status`, `report` and `--format json`, still print)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'idprune;apply' {
            [CompletionResult]::new('--approve', '--approve', [CompletionResultType]::ParameterName, 'The approved digest (`sha256:<hex>`, bare hex, or a unique prefix of 12+ hex digits)')
            [CompletionResult]::new('--receipt', '--receipt', [CompletionResultType]::ParameterName, 'The committed receipt whose digest is approved (instead of `--approve`)')
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'How to print the final report (`json`: one object on stdout with `format_version`)')
            [CompletionResult]::new('--canary', '--canary', [CompletionResultType]::ParameterName, 'Send the first N deletions one at a time and re-read each profile before the fan-out; stop (exit 1) unless each target is gone and nothing else changed')
            [CompletionResult]::new('--canary-wait', '--canary-wait', [CompletionResultType]::ParameterName, 'How long the canary re-reads a profile for Segment to propagate a delete')
            [CompletionResult]::new('--checkpoint-every', '--checkpoint-every', [CompletionResultType]::ParameterName, 'With a state in a store: push the journal there this often during the run (and always on the way out), so a resume elsewhere repeats at most this much')
            [CompletionResult]::new('--state', '--state', [CompletionResultType]::ParameterName, 'Where the state lives: a store URL (`s3://bucket/plans/x.state`, `gs://`, `az://`, `file://`), whose object is the truth and whose copy there is always encrypted; the state path given, if any, is then the local working copy. A plain path is the same as giving it as the state path. A state path may also be a store URL itself')
            [CompletionResult]::new('--state-key-file', '--state-key-file', [CompletionResultType]::ParameterName, 'Read the state key (32 random bytes, base64) from this file instead of `IDPRUNE_STATE_KEY`. Needed for a state in a store')
            [CompletionResult]::new('--policy', '--policy', [CompletionResultType]::ParameterName, 'The policy the plan was judged by, when it was given to `plan --policy` (apply refuses, exit 4, when it is not the sealed one)')
            [CompletionResult]::new('--override', '--override', [CompletionResultType]::ParameterName, 'Go past a failed soft policy rule (repeatable); needs `--why`. Recorded with the run. Hard rules cannot be overridden')
            [CompletionResult]::new('--why', '--why', [CompletionResultType]::ParameterName, 'Why the overridden rules may be passed (recorded with the run, shown by `show` and `status`)')
            [CompletionResult]::new('--rate', '--rate', [CompletionResultType]::ParameterName, 'Requests per second for the whole space, reads and deletes together (0: unlimited)')
            [CompletionResult]::new('--concurrency', '--concurrency', [CompletionResultType]::ParameterName, 'Requests in flight at most. The window actually used is sized to the rate times the observed latency (100/s at 1 s latency: about 150), up to this cap; raise it for latencies over about 1.5 s')
            [CompletionResult]::new('--api-url', '--api-url', [CompletionResultType]::ParameterName, 'API base URL (default: from the manifest''s region; also `IDPRUNE_API_URL`)')
            [CompletionResult]::new('--token-file', '--token-file', [CompletionResultType]::ParameterName, 'Read the access token from this file instead of `SEGMENT_ACCESS_TOKEN`')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to colour diffs and summaries (`auto`: on a terminal, unless `NO_COLOR` is set)')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Apply without asking')
            [CompletionResult]::new('--retry-failed', '--retry-failed', [CompletionResultType]::ParameterName, 'Also retry items that failed permanently (400, 404 not_found)')
            [CompletionResult]::new('--reapply', '--reapply', [CompletionResultType]::ParameterName, 'Re-run a finished journal''s deletions as a new recorded run (after a space rebuild, which does not replay deletions). Same seal and approval checks')
            [CompletionResult]::new('--token-stdin', '--token-stdin', [CompletionResultType]::ParameterName, 'Read the access token from standard input')
            [CompletionResult]::new('--insecure', '--insecure', [CompletionResultType]::ParameterName, 'Allow a plain-http API URL that is not on loopback')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print errors only: no progress, notes or warnings, and no human summary on stdout (views asked for, like `show`, `status`, `report` and `--format json`, still print)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print errors only: no progress, notes or warnings, and no human summary on stdout (views asked for, like `show`, `status`, `report` and `--format json`, still print)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'idprune;status' {
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--state', '--state', [CompletionResultType]::ParameterName, 'Where the state lives: a store URL (`s3://bucket/plans/x.state`, `gs://`, `az://`, `file://`), whose object is the truth and whose copy there is always encrypted; the state path given, if any, is then the local working copy. A plain path is the same as giving it as the state path. A state path may also be a store URL itself')
            [CompletionResult]::new('--state-key-file', '--state-key-file', [CompletionResultType]::ParameterName, 'Read the state key (32 random bytes, base64) from this file instead of `IDPRUNE_STATE_KEY`. Needed for a state in a store')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to colour diffs and summaries (`auto`: on a terminal, unless `NO_COLOR` is set)')
            [CompletionResult]::new('--reveal', '--reveal', [CompletionResultType]::ParameterName, 'Show identifier values in JSON output')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print errors only: no progress, notes or warnings, and no human summary on stdout (views asked for, like `show`, `status`, `report` and `--format json`, still print)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print errors only: no progress, notes or warnings, and no human summary on stdout (views asked for, like `show`, `status`, `report` and `--format json`, still print)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'idprune;verify' {
            [CompletionResult]::new('--wait', '--wait', [CompletionResultType]::ParameterName, 'Poll with back-off until every removed identifier is gone or this much time has passed (`--wait` alone: 6m, beyond Segment''s documented propagation of up to 5 minutes)')
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--state', '--state', [CompletionResultType]::ParameterName, 'Where the state lives: a store URL (`s3://bucket/plans/x.state`, `gs://`, `az://`, `file://`), whose object is the truth and whose copy there is always encrypted; the state path given, if any, is then the local working copy. A plain path is the same as giving it as the state path. A state path may also be a store URL itself')
            [CompletionResult]::new('--state-key-file', '--state-key-file', [CompletionResultType]::ParameterName, 'Read the state key (32 random bytes, base64) from this file instead of `IDPRUNE_STATE_KEY`. Needed for a state in a store')
            [CompletionResult]::new('--rate', '--rate', [CompletionResultType]::ParameterName, 'Requests per second for the whole space, reads and deletes together (0: unlimited)')
            [CompletionResult]::new('--concurrency', '--concurrency', [CompletionResultType]::ParameterName, 'Requests in flight at most. The window actually used is sized to the rate times the observed latency (100/s at 1 s latency: about 150), up to this cap; raise it for latencies over about 1.5 s')
            [CompletionResult]::new('--api-url', '--api-url', [CompletionResultType]::ParameterName, 'API base URL (default: from the manifest''s region; also `IDPRUNE_API_URL`)')
            [CompletionResult]::new('--token-file', '--token-file', [CompletionResultType]::ParameterName, 'Read the access token from this file instead of `SEGMENT_ACCESS_TOKEN`')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to colour diffs and summaries (`auto`: on a terminal, unless `NO_COLOR` is set)')
            [CompletionResult]::new('--redact', '--redact', [CompletionResultType]::ParameterName, 'Hide identifier values')
            [CompletionResult]::new('--reveal', '--reveal', [CompletionResultType]::ParameterName, 'Show identifier values in JSON output')
            [CompletionResult]::new('--token-stdin', '--token-stdin', [CompletionResultType]::ParameterName, 'Read the access token from standard input')
            [CompletionResult]::new('--insecure', '--insecure', [CompletionResultType]::ParameterName, 'Allow a plain-http API URL that is not on loopback')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print errors only: no progress, notes or warnings, and no human summary on stdout (views asked for, like `show`, `status`, `report` and `--format json`, still print)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print errors only: no progress, notes or warnings, and no human summary on stdout (views asked for, like `show`, `status`, `report` and `--format json`, still print)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'idprune;report' {
            [CompletionResult]::new('--only', '--only', [CompletionResultType]::ParameterName, 'With `--results`: only these rows (`failed`)')
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Output format of `--downstream` and `--results`')
            [CompletionResult]::new('--schema', '--schema', [CompletionResultType]::ParameterName, 'The warehouse schema of Profiles Sync''s tables (with `--sql`); `project.dataset` or `database.schema` also work')
            [CompletionResult]::new('--dialect', '--dialect', [CompletionResultType]::ParameterName, 'The warehouse''s SQL dialect (string and identifier quoting differ)')
            [CompletionResult]::new('--csv', '--csv', [CompletionResultType]::ParameterName, 'Write the removed identifiers to this CSV and print a query that loads and joins it (for more than 1,000 identifiers; a million is fine)')
            [CompletionResult]::new('--discover', '--discover', [CompletionResultType]::ParameterName, 'Instead: queries listing the profiles that carry a TYPE identifier LIKE PATTERN (`email:%@import.invalid`; repeatable, any matches), each with a user_id it keeps, to export as CSV for `idprune init --from-csv`')
            [CompletionResult]::new('--discover-csv', '--discover-csv', [CompletionResultType]::ParameterName, 'Instead: the same queries for the identifiers listed in this CSV (`id_type,id_value` with a header), which the warehouse loads and joins')
            [CompletionResult]::new('--state', '--state', [CompletionResultType]::ParameterName, 'Where the state lives: a store URL (`s3://bucket/plans/x.state`, `gs://`, `az://`, `file://`), whose object is the truth and whose copy there is always encrypted; the state path given, if any, is then the local working copy. A plain path is the same as giving it as the state path. A state path may also be a store URL itself')
            [CompletionResult]::new('--state-key-file', '--state-key-file', [CompletionResultType]::ParameterName, 'Read the state key (32 random bytes, base64) from this file instead of `IDPRUNE_STATE_KEY`. Needed for a state in a store')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to colour diffs and summaries (`auto`: on a terminal, unless `NO_COLOR` is set)')
            [CompletionResult]::new('--downstream', '--downstream', [CompletionResultType]::ParameterName, 'The removed identifiers, for clean-up in downstream destinations')
            [CompletionResult]::new('--sql', '--sql', [CompletionResultType]::ParameterName, 'A warehouse query checking that Profiles Sync received the REMOVED rows')
            [CompletionResult]::new('--results', '--results', [CompletionResultType]::ParameterName, 'One row per item: seq, type, value (masked unless --reveal), action, state, attempts, HTTP status, Segment''s error code and message, request id, last attempt time, origin')
            [CompletionResult]::new('--reveal', '--reveal', [CompletionResultType]::ParameterName, 'With `--results`: show identifier values instead of masked previews')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print errors only: no progress, notes or warnings, and no human summary on stdout (views asked for, like `show`, `status`, `report` and `--format json`, still print)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print errors only: no progress, notes or warnings, and no human summary on stdout (views asked for, like `show`, `status`, `report` and `--format json`, still print)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'idprune;purge' {
            [CompletionResult]::new('--key-file', '--key-file', [CompletionResultType]::ParameterName, 'Read the fingerprint key from this file instead of `IDPRUNE_FINGERPRINT_KEY`')
            [CompletionResult]::new('--state', '--state', [CompletionResultType]::ParameterName, 'Where the state lives: a store URL (`s3://bucket/plans/x.state`, `gs://`, `az://`, `file://`), whose object is the truth and whose copy there is always encrypted; the state path given, if any, is then the local working copy. A plain path is the same as giving it as the state path. A state path may also be a store URL itself')
            [CompletionResult]::new('--state-key-file', '--state-key-file', [CompletionResultType]::ParameterName, 'Read the state key (32 random bytes, base64) from this file instead of `IDPRUNE_STATE_KEY`. Needed for a state in a store')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to colour diffs and summaries (`auto`: on a terminal, unless `NO_COLOR` is set)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print errors only: no progress, notes or warnings, and no human summary on stdout (views asked for, like `show`, `status`, `report` and `--format json`, still print)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print errors only: no progress, notes or warnings, and no human summary on stdout (views asked for, like `show`, `status`, `report` and `--format json`, still print)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'idprune;unlock' {
            [CompletionResult]::new('--state', '--state', [CompletionResultType]::ParameterName, 'Where the state lives: a store URL (`s3://bucket/plans/x.state`, `gs://`, `az://`, `file://`), whose object is the truth and whose copy there is always encrypted; the state path given, if any, is then the local working copy. A plain path is the same as giving it as the state path. A state path may also be a store URL itself')
            [CompletionResult]::new('--state-key-file', '--state-key-file', [CompletionResultType]::ParameterName, 'Read the state key (32 random bytes, base64) from this file instead of `IDPRUNE_STATE_KEY`. Needed for a state in a store')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to colour diffs and summaries (`auto`: on a terminal, unless `NO_COLOR` is set)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print errors only: no progress, notes or warnings, and no human summary on stdout (views asked for, like `show`, `status`, `report` and `--format json`, still print)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print errors only: no progress, notes or warnings, and no human summary on stdout (views asked for, like `show`, `status`, `report` and `--format json`, still print)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'idprune;emulator' {
            [CompletionResult]::new('--listen', '--listen', [CompletionResultType]::ParameterName, 'Address to listen on; must be loopback. Port 0 picks a free port')
            [CompletionResult]::new('--seed', '--seed', [CompletionResultType]::ParameterName, 'JSON file with the space, optional token and profiles (empty space when absent)')
            [CompletionResult]::new('--space-rate', '--space-rate', [CompletionResultType]::ParameterName, 'Requests per second for the whole space, reads and deletes together; 0 = unlimited')
            [CompletionResult]::new('--limiter', '--limiter', [CompletionResultType]::ParameterName, 'How the space limit counts: a strict sliding 1 s window (the strictest reading of Segment''s docs), fixed clock-aligned seconds, or a token bucket of a second''s tokens. A refused request uses none of the budget')
            [CompletionResult]::new('--transit-jitter-ms', '--transit-jitter-ms', [CompletionResultType]::ParameterName, 'Each request waits uniformly in [0, N) milliseconds before the limiter sees it (network delay the client cannot see: arrival order and spacing differ from sending)')
            [CompletionResult]::new('--profile-rate', '--profile-rate', [CompletionResultType]::ParameterName, 'Deletes per second for a single profile; 0 = unlimited')
            [CompletionResult]::new('--latency-ms', '--latency-ms', [CompletionResultType]::ParameterName, 'Added latency per request, in milliseconds')
            [CompletionResult]::new('--latency-jitter', '--latency-jitter', [CompletionResultType]::ParameterName, 'Latency is uniform within ±PCT% of --latency-ms')
            [CompletionResult]::new('--fail-rate', '--fail-rate', [CompletionResultType]::ParameterName, 'Fraction (0..1) of requests answered 500/502/503')
            [CompletionResult]::new('--hang-rate', '--hang-rate', [CompletionResultType]::ParameterName, 'Fraction (0..1) of requests that sleep --hang-ms before answering')
            [CompletionResult]::new('--hang-ms', '--hang-ms', [CompletionResultType]::ParameterName, 'How long a hanging request sleeps, in milliseconds')
            [CompletionResult]::new('--malformed-rate', '--malformed-rate', [CompletionResultType]::ParameterName, 'Fraction (0..1) of 200/404 answers whose body is cut short (invalid JSON)')
            [CompletionResult]::new('--lost-ack-rate', '--lost-ack-rate', [CompletionResultType]::ParameterName, 'Fraction (0..1) of successful deletes that are applied but answered 500')
            [CompletionResult]::new('--propagation-ms', '--propagation-ms', [CompletionResultType]::ParameterName, 'Deleted identifiers keep showing in reads (and resolving lookups) for N milliseconds')
            [CompletionResult]::new('--random-seed', '--random-seed', [CompletionResultType]::ParameterName, 'Seed of the fault-injection RNG, for a reproducible run (default: from the clock)')
            [CompletionResult]::new('--retry-after', '--retry-after', [CompletionResultType]::ParameterName, 'Send `Retry-After: SECS` with every 429 (Segment documents none, so off by default)')
            [CompletionResult]::new('--unsupported-type', '--unsupported-type', [CompletionResultType]::ParameterName, 'Answer deletes of this identifier type with 400 `unsupported_eid_type` (Segment''s answer for a type it cannot delete); repeatable. A permanent failure to test with')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to colour diffs and summaries (`auto`: on a terminal, unless `NO_COLOR` is set)')
            [CompletionResult]::new('--not-activated', '--not-activated', [CompletionResultType]::ParameterName, 'Answer every delete with 403 `forbidden` (the feature is not activated for the space)')
            [CompletionResult]::new('--ineffective-deletes', '--ineffective-deletes', [CompletionResultType]::ParameterName, 'Answer deletes 200 `success` without removing anything (a service that behaves differently from its documentation; what `apply --canary` guards against)')
            [CompletionResult]::new('--lowercase-lookups', '--lowercase-lookups', [CompletionResultType]::ParameterName, 'Lookups holding an upper-case character find no profile (Segment: "queries with an external_id in other casing won''t return any profiles"), even when stored that way')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print errors only: no progress, notes or warnings, and no human summary on stdout (views asked for, like `show`, `status`, `report` and `--format json`, still print)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print errors only: no progress, notes or warnings, and no human summary on stdout (views asked for, like `show`, `status`, `report` and `--format json`, still print)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'idprune;demo' {
            [CompletionResult]::new('--dir', '--dir', [CompletionResultType]::ParameterName, 'Keep the demo''s working directory (its manifest and state file) here instead of a temporary one')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to colour diffs and summaries (`auto`: on a terminal, unless `NO_COLOR` is set)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print errors only: no progress, notes or warnings, and no human summary on stdout (views asked for, like `show`, `status`, `report` and `--format json`, still print)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print errors only: no progress, notes or warnings, and no human summary on stdout (views asked for, like `show`, `status`, `report` and `--format json`, still print)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'idprune;guard' {
            [CompletionResult]::new('--archive', '--archive', [CompletionResultType]::ParameterName, 'Event Archive exports: gzipped or plain JSON-lines files, or directories walked recursively (`segment-logs/<source-id>/<received-day>/...`)')
            [CompletionResult]::new('--write-filtered', '--write-filtered', [CompletionResultType]::ParameterName, 'Write copies without the matching events here (same layout, same compression; malformed lines are kept unchanged). Refuses to replace existing files')
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--state', '--state', [CompletionResultType]::ParameterName, 'Where the state lives: a store URL (`s3://bucket/plans/x.state`, `gs://`, `az://`, `file://`), whose object is the truth and whose copy there is always encrypted; the state path given, if any, is then the local working copy. A plain path is the same as giving it as the state path. A state path may also be a store URL itself')
            [CompletionResult]::new('--state-key-file', '--state-key-file', [CompletionResultType]::ParameterName, 'Read the state key (32 random bytes, base64) from this file instead of `IDPRUNE_STATE_KEY`. Needed for a state in a store')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to colour diffs and summaries (`auto`: on a terminal, unless `NO_COLOR` is set)')
            [CompletionResult]::new('--follow-symlinks', '--follow-symlinks', [CompletionResultType]::ParameterName, 'Follow symbolic links inside an archive directory: scan the files they point to and walk the folders (a link looping back is skipped). By default such links are skipped, since a planted one could point anywhere; paths given to --archive are always read')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print errors only: no progress, notes or warnings, and no human summary on stdout (views asked for, like `show`, `status`, `report` and `--format json`, still print)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print errors only: no progress, notes or warnings, and no human summary on stdout (views asked for, like `show`, `status`, `report` and `--format json`, still print)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'idprune;init' {
            [CompletionResult]::new('--from-csv', '--from-csv', [CompletionResultType]::ParameterName, 'The CSV export (for example from `report --sql --discover`)')
            [CompletionResult]::new('--profile-column', '--profile-column', [CompletionResultType]::ParameterName, 'The column holding each row''s profile lookup (`user_id`, `segment_id`, or any type)')
            [CompletionResult]::new('--remove-column', '--remove-column', [CompletionResultType]::ParameterName, 'A column of identifiers to remove; its header is the identifier type. Repeatable')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'The manifest to write (default: the CSV''s path with `.yaml`). Must be in a directory that holds the CSV')
            [CompletionResult]::new('--out', '--out', [CompletionResultType]::ParameterName, 'The manifest to write (default: the CSV''s path with `.yaml`). Must be in a directory that holds the CSV')
            [CompletionResult]::new('--space', '--space', [CompletionResultType]::ParameterName, 'The Unify space id (left as a placeholder for you to fill in when absent)')
            [CompletionResult]::new('--region', '--region', [CompletionResultType]::ParameterName, 'The space''s region')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to colour diffs and summaries (`auto`: on a terminal, unless `NO_COLOR` is set)')
            [CompletionResult]::new('--force', '--force', [CompletionResultType]::ParameterName, 'Replace an existing manifest')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print errors only: no progress, notes or warnings, and no human summary on stdout (views asked for, like `show`, `status`, `report` and `--format json`, still print)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print errors only: no progress, notes or warnings, and no human summary on stdout (views asked for, like `show`, `status`, `report` and `--format json`, still print)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'idprune;completions' {
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to colour diffs and summaries (`auto`: on a terminal, unless `NO_COLOR` is set)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print errors only: no progress, notes or warnings, and no human summary on stdout (views asked for, like `show`, `status`, `report` and `--format json`, still print)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print errors only: no progress, notes or warnings, and no human summary on stdout (views asked for, like `show`, `status`, `report` and `--format json`, still print)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'idprune;man' {
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to colour diffs and summaries (`auto`: on a terminal, unless `NO_COLOR` is set)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print errors only: no progress, notes or warnings, and no human summary on stdout (views asked for, like `show`, `status`, `report` and `--format json`, still print)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print errors only: no progress, notes or warnings, and no human summary on stdout (views asked for, like `show`, `status`, `report` and `--format json`, still print)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'idprune;help' {
            [CompletionResult]::new('validate', 'validate', [CompletionResultType]::ParameterValue, 'Check a manifest offline: syntax, schema, duplicates, guard rails knowable offline')
            [CompletionResult]::new('plan', 'plan', [CompletionResultType]::ParameterValue, 'Resolve a manifest against the live profiles and seal the plan into a state file')
            [CompletionResult]::new('show', 'show', [CompletionResultType]::ParameterValue, 'Render a sealed plan and its progress')
            [CompletionResult]::new('apply', 'apply', [CompletionResultType]::ParameterValue, 'Execute the approved plan; running it again resumes')
            [CompletionResult]::new('status', 'status', [CompletionResultType]::ParameterValue, 'Counts by state, lock holder, runs and last errors')
            [CompletionResult]::new('verify', 'verify', [CompletionResultType]::ParameterValue, 'Re-read the touched profiles and report identifiers still present; exit 2 if any')
            [CompletionResult]::new('report', 'report', [CompletionResultType]::ParameterValue, 'What Segment leaves to you: removed identifiers for downstream tools, or a warehouse check')
            [CompletionResult]::new('purge', 'purge', [CompletionResultType]::ParameterValue, 'Replace the identifier values of a finished run with keyed fingerprints (audit trail kept)')
            [CompletionResult]::new('unlock', 'unlock', [CompletionResultType]::ParameterValue, 'Break a stale apply lock (refused while its holder runs on this host)')
            [CompletionResult]::new('emulator', 'emulator', [CompletionResultType]::ParameterValue, 'Run the built-in Unify emulator on loopback')
            [CompletionResult]::new('demo', 'demo', [CompletionResultType]::ParameterValue, 'The whole job offline: emulator, plan, show, apply, status, verify')
            [CompletionResult]::new('guard', 'guard', [CompletionResultType]::ParameterValue, 'Find archived events that would re-add removed identifiers; exit 2 if any')
            [CompletionResult]::new('init', 'init', [CompletionResultType]::ParameterValue, 'Write a manifest for a CSV export, pinned by sha256, `reason` left for you to fill in')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print a shell completion script to stdout')
            [CompletionResult]::new('man', 'man', [CompletionResultType]::ParameterValue, 'Print the man page (roff) to stdout')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'idprune;help;validate' {
            break
        }
        'idprune;help;plan' {
            break
        }
        'idprune;help;show' {
            break
        }
        'idprune;help;apply' {
            break
        }
        'idprune;help;status' {
            break
        }
        'idprune;help;verify' {
            break
        }
        'idprune;help;report' {
            break
        }
        'idprune;help;purge' {
            break
        }
        'idprune;help;unlock' {
            break
        }
        'idprune;help;emulator' {
            break
        }
        'idprune;help;demo' {
            break
        }
        'idprune;help;guard' {
            break
        }
        'idprune;help;init' {
            break
        }
        'idprune;help;completions' {
            break
        }
        'idprune;help;man' {
            break
        }
        'idprune;help;help' {
            break
        }
    })

    $completions.Where{ $_.CompletionText -like "$wordToComplete*" } |
        Sort-Object -Property ListItemText
}
