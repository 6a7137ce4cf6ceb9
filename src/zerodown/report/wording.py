"""The report's sentences in Traditional Chinese and English, and how it prints numbers.

Every sentence is a template with named slots; the renderer fills the slots with numbers that
are already rounded in the JSON twin, printed by ``num`` exactly as stored (``25.1``, ``100``,
``0.00123``), so the Markdown and the JSON always show the same figures.
"""

from __future__ import annotations

from typing import Any, Final

__all__ = ["PHRASES", "Words", "num"]


def num(value: float | int) -> str:
    """A stored number as the report prints it: integers without a decimal point, floats in
    their shortest form, never in exponent notation."""
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, int):
        return str(value)
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    text = repr(value)
    if "e" in text or "E" in text:
        text = f"{value:.12f}".rstrip("0").rstrip(".")
    return text


PHRASES: Final[dict[str, tuple[str, str]]] = {
    # generic
    "not_measured": ("未測量", "not measured"),
    "not_measured_because": ("未測量: {reason}", "not measured: {reason}"),
    "items": ("{count} 項:", "items: {count}"),
    "list_sep": ("; ", "; "),
    "triggered": ("觸發", "triggered"),
    "not_triggered": ("未觸發", "not triggered"),
    "within": ("符合", "within"),
    "not_within": ("未達", "missed"),
    "status_pass": ("通過", "pass"),
    "status_warn": ("警告", "warn"),
    "status_fail": ("失敗", "fail"),
    "status_inconclusive": ("未定論", "inconclusive"),
    "status_skipped": ("已略過", "skipped"),
    "step": ("+{offset} s `{kind}`: {message}", "+{offset} s `{kind}`: {message}"),
    "step_no_time": ("`{kind}`: {message}", "`{kind}`: {message}"),
    "revision": ("revision {revision}", "revision {revision}"),
    "revision_version": ("revision {revision} ({version})", "revision {revision} ({version})"),
    "chart": (
        "![部署期間各版本的流量權重、錯誤率與 p95]({name})",
        "![Traffic weight, error rate and p95 per version during the rollout]({name})",
    ),
    # reasons a figure is not known
    "reason_no_samples": (
        "本次操作沒有流量與資源取樣 (沒有 rollout.sample 事件)",
        "this operation recorded no traffic and resource samples (no rollout.sample events)",
    ),
    "reason_no_host_data": (
        "取樣中沒有主機資源資料",
        "the samples carry no host resource figures",
    ),
    "reason_single_sample": (
        "只有一次主機取樣, 頻寬需要兩次連續取樣才能計算",
        "only one host sample: bandwidth needs two consecutive samples",
    ),
    "reason_no_network_counters": (
        "主機取樣沒有網路計數",
        "the host samples carry no network counters",
    ),
    "reason_no_traffic": (
        "沒有流量統計 (資料平面沒有回報, 本次操作沒有 summary 也沒有取樣)",
        "no traffic figures (the data plane reported none: no summary and no samples)",
    ),
    "reason_no_requests": ("期間沒有任何請求", "no requests during the window"),
    "reason_no_unserved_counts": (
        "取樣只含請求與錯誤數, 沒有連線失敗與逾時計數 (沒有 summary)",
        "the samples count requests and errors only, not connection failures and timeouts "
        "(no summary)",
    ),
    "reason_no_user_identity": (
        "zerodown 以請求計量, 資料平面不識別使用者",
        "zerodown counts requests; the data plane does not identify users",
    ),
    "reason_no_previous": ("沒有前一版本可比較", "no previous version to compare with"),
    "reason_no_latency": (
        "前一版本沒有可比較的延遲 (同窗口請求不足, 也沒有記錄)",
        "no latency of the previous version to compare with (too few requests in the same "
        "window and none recorded)",
    ),
    "reason_no_latency_new": (
        "新版本沒有延遲資料 (沒有流量)",
        "no latency figures for the new version (no traffic)",
    ),
    "reason_no_instances": ("沒有實例資料", "no instance figures"),
    # deployment type
    "type_canary": (
        "Canary (段式流量切換: 新版本流量 {weights}; {analyses} 次分析)",
        "Canary (staged traffic shift: new version at {weights}; analyses run: {analyses})",
    ),
    "type_canary_no_weights": (
        "Canary (段式流量切換; 尚未設定流量; {analyses} 次分析)",
        "Canary (staged traffic shift; no weight set yet; analyses run: {analyses})",
    ),
    "type_bluegreen": (
        "Blue-Green (完整環境切換: {replicas} 個新實例就緒後一次切換全部流量; {analyses} 次分析)",
        "Blue-Green (whole-environment switch: all traffic moves at once after {replicas} new "
        "instance(s) are ready; analyses run: {analyses})",
    ),
    "type_rolling": (
        "Rolling (循序實例更新: 逐批替換 {replicas} 個實例, 新實例健康後才停止舊實例; "
        "{analyses} 次分析)",
        "Rolling (instances replaced in turn: {replicas} instance(s), each new one healthy "
        "before an old one stops; analyses run: {analyses})",
    ),
    "type_native": (
        "Swarm Native (Swarm 原生就地更新 {replicas} 個任務, 依其 update_config: {how}; "
        "{analyses} 次分析)",
        "Swarm Native (Swarm's own in-place update of {replicas} task(s) by its update_config: "
        "{how}; analyses run: {analyses})",
    ),
    "type_initial": (
        "Initial (首次部署: 啟動 {replicas} 個實例, 沒有前一版本)",
        "Initial (first deployment: {replicas} instance(s), no previous release)",
    ),
    "type_rollback": ("Rollback (回滾至 {target})", "Rollback (back to {target})"),
    "type_other": ("{type} (操作 {operation})", "{type} (operation {operation})"),
    # deployment status
    "status_success": ("成功: {reason}", "Succeeded: {reason}"),
    "status_partial": (
        "部分成功 (已完成, 但 {reasons})",
        "Partially succeeded (completed, but {reasons})",
    ),
    "status_rolled_back_automatic": (
        "失敗 — 已自動回滾: {reason}",
        "Failed — automatically rolled back: {reason}",
    ),
    "status_rolled_back_manual": (
        "失敗 — 已中止並回滾: {reason}",
        "Failed — aborted and rolled back: {reason}",
    ),
    "status_failed": ("失敗: {reason}", "Failed: {reason}"),
    "status_in_progress": ("進行中 ({status}): {reason}", "In progress ({status}): {reason}"),
    "status_stopped": ("已停止: {reason}", "Stopped: {reason}"),
    "status_unknown": ("未知 (狀態 {status}): {reason}", "Unknown (status {status}): {reason}"),
    "partial_analysis_inconclusive": (
        "分析「{label}」未定論: {reason}",
        "analysis '{label}' was inconclusive: {reason}",
    ),
    "partial_analysis_skipped": (
        "分析「{label}」被 promote 略過",
        "analysis '{label}' was skipped by a promote",
    ),
    "partial_restarts": (
        "新版本實例重啟 {restarts} 次, 崩潰 {crashes} 次",
        "the new version's instances restarted or crashed (restarts: {restarts}, crashes: "
        "{crashes})",
    ),
    "partial_postcheck_failed": (
        "部署後檢查 {name} 失敗",
        "post-deployment check {name} failed",
    ),
    # deployment time
    "time_done": (
        "{seconds} s ({hms}), {started} → {finished}",
        "{seconds} s ({hms}), {started} → {finished}",
    ),
    "time_running": (
        "進行中: 已 {seconds} s ({hms}), 自 {started} 起",
        "in progress: {seconds} s so far ({hms}), since {started}",
    ),
    # impact
    "impact_replace": (
        "服務 {service}: {previous} → {new}; {replaced} 個實例被替換 (新啟動 {started} 個, "
        "停止 {stopped} 個新實例)",
        "service {service}: {previous} → {new}; {replaced} instance(s) replaced ({started} new "
        "started, {stopped} new stopped)",
    ),
    "impact_drill": (
        "服務 {service}: 無使用者受影響: 這是災難復原演練 (維運操作, 不是部署), 以還原的備份資料在 "
        "{address} 另起 {new} 的副本, 演練結束即停止並清除; 線上服務與其資料未被觸及",
        "service {service}: no user affected: a disaster-recovery drill (an operation, not a "
        "deployment) ran a copy of {new} on {address} against restored backups, stopped and "
        "removed when the drill ended; the live service and its data were not touched",
    ),
    "impact_drill_users": (
        "使用者: 演練只收到 zerodown 的煙霧測試請求",
        "users: the drill's copy served only zerodown's smoke tests",
    ),
    "impact_backup": (
        "服務 {service}: 無使用者受影響: 這是備份 (維運操作, 不是部署), 讀取了 {count} 個備份的"
        "線上資料 (目標 {targets}), 沒有修改任何資料, 服務照常運作",
        "service {service}: no user affected: a backup (an operation, not a deployment) read the "
        "live data into {count} backup(s) (targets {targets}); nothing was changed and the "
        "service kept serving",
    ),
    "impact_bytes": ("共 {bytes} bytes", "{bytes} bytes in all"),
    "impact_backup_users": (
        "使用者: 備份期間服務照常回應請求; 備份對回應時間的影響沒有量測",
        "users: the service kept answering during the backup; the backup's effect on response "
        "times was not measured",
    ),
    "impact_restore": (
        "服務 {service}: 無使用者受影響: 這是還原 (維運操作, 不是部署), 備份 #{id} ({target}) "
        "還原到新的位置 {destination} ({bytes} bytes); 線上資料未被觸及",
        "service {service}: no user affected: a restore (an operation, not a deployment) put "
        "backup #{id} ({target}) in a new place, {destination} ({bytes} bytes); the live data "
        "was not touched",
    ),
    "impact_restore_users": (
        "使用者: 仍然使用原本的線上資料",
        "users: still served from the live data as it was",
    ),
    "impact_restore_live": (
        "服務 {service}: 線上資料已被取代: 備份 #{id} ({target}) 依 --force 還原到線上位置 "
        "{destination} ({bytes} bytes) (維運操作, 不是部署)",
        "service {service}: the live data was replaced: backup #{id} ({target}) was restored "
        "over the live location {destination} with --force ({bytes} bytes; an operation, not a "
        "deployment)",
    ),
    "impact_restore_live_users": (
        "使用者: 從此看到備份當時的資料 (備份時距今 {age} 秒); 備份之後寫入的變更不在線上資料中",
        "users: from now on they see the data as the backup held it ({age} s old); changes "
        "written after the backup are not in the live data any more",
    ),
    "impact_restore_moved": (
        "被取代的資料移到 {moved}",
        "the data it replaced was moved to {moved}",
    ),
    "impact_restore_failed": (
        "服務 {service}: 無使用者受影響: 備份 #{id} 的還原失敗, 沒有寫入任何資料",
        "service {service}: no user affected: the restore of backup #{id} failed and wrote nothing",
    ),
    "impact_retention": (
        "服務 {service}: 無使用者受影響: 這是備份保留政策 (維運操作, 不是部署), 移除 {removed} 個"
        "備份 ({removed_bytes} bytes), 保留 {kept} 個; 線上服務與資料未被觸及",
        "service {service}: no user affected: retention (an operation, not a deployment) removed "
        "{removed} backup(s) ({removed_bytes} bytes) and kept {kept}; the live service and its "
        "data were not touched",
    ),
    "impact_retention_users": (
        "使用者: 沒有受影響; 被移除的備份不能再用來還原",
        "users: not affected; the removed backups can no longer be restored",
    ),
    "impact_first": (
        "服務 {service}: 首次部署 {new}; 新啟動 {started} 個實例",
        "service {service}: first deployment of {new}; {started} instance(s) started",
    ),
    "impact_requests": (
        "部署期間 {requests} 個請求, 其中 {to_new} 個 ({share}%) 送達新版本",
        "{requests} requests during the rollout, {to_new} ({share}%) of them to the new version",
    ),
    "impact_requests_total": (
        "部署期間 {requests} 個請求",
        "{requests} requests during the rollout",
    ),
    "impact_requests_unknown": ("請求數: {reason}", "requests: {reason}"),
    "impact_from_samples": ("(取自最後一次取樣)", "(from the last sample)"),
    "impact_users": ("使用者: 未測量: {reason}", "users: not measured: {reason}"),
    # health score
    "health_value": ("{score}/{max} ({components})", "{score}/{max} ({components})"),
    "health_component": ("{name} {score} (權重 {weight})", "{name} {score} (weight {weight})"),
    "health_none": (
        "未測量: 沒有流量統計也沒有實例資料",
        "not measured: no traffic figures and no instances",
    ),
    "health_formula": (
        "公式: 健康度 = Σ(權重 × 分項分數) / Σ權重, 只計已測量的分項; 各分項介於 0 與 {max}, "
        "達到回滾門檻時為 {at_limit} ({limits})",
        "formula: health = Σ(weight × component score) / Σ weight over the measured components; "
        "each component is between 0 and {max} and {at_limit} at its rollback limit ({limits})",
    ),
    "limits_analysis": ("門檻取自本次分析設定", "limits from this rollout's analysis"),
    "limits_defaults": (
        "門檻為預設的自動回滾條件",
        "limits are the default automatic-rollback rules",
    ),
    "name_availability": ("可用性", "availability"),
    "name_error_rate": ("錯誤率", "error rate"),
    "name_latency": ("p95 延遲", "p95 latency"),
    "name_instances": ("健康實例", "healthy instances"),
    "health_availability": (
        "可用性 {value}% (門檻 ≥ {limit}%) → {max} × (1 − 不可用率 / (2 × (1 − 門檻))) = {score}",
        "availability {value}% (limit ≥ {limit}%) → {max} × (1 − unavailability / (2 × (1 − "
        "limit))) = {score}",
    ),
    "health_error_rate": (
        "錯誤率 {value}% (上限 {limit}%) → {max} × (1 − 錯誤率 / (2 × 上限)) = {score}",
        "error rate {value}% (limit {limit}%) → {max} × (1 − error rate / (2 × limit)) = {score}",
    ),
    "health_latency": (
        "p95 新版本 {new} / 前一版本 {baseline} = {ratio} 倍 (上限 {limit} 倍) → "
        "{max} × (1 − (比值 − 1) / (2 × (上限 − 1))) = {score}",
        "p95 new {new} / previous {baseline} = {ratio}× (limit {limit}×) → "
        "{max} × (1 − (ratio − 1) / (2 × (limit − 1))) = {score}",
    ),
    "health_instances": (
        "{revision}: {healthy}/{expected} 個實例健康 → {max} × 健康 / 應有 = {score}",
        "{revision}: {healthy}/{expected} instances healthy → {max} × healthy / expected = {score}",
    ),
    "health_missing": ("{name}: 未計入: {reason}", "{name}: left out: {reason}"),
    # resources
    "cpu": (
        "{average}% (主機平均, {samples} 次取樣; 峰值 {peak}%, {cores} 核, load_1m 峰值 {load})",
        "{average}% (host average, samples: {samples}; peak {peak}%, cores: {cores}, "
        "peak load_1m {load})",
    ),
    "cpu_instance": (
        "實例 {id} ({revision}) 目前 {cpu} (單核的百分比)",
        "instance {id} ({revision}) now {cpu} (of one core)",
    ),
    "memory": (
        "{average}% (主機平均; 峰值 {peak}%, 已用峰值 {used} / 共 {total})",
        "{average}% (host average; peak {peak}%, peak used {used} of {total})",
    ),
    "memory_instance": (
        "實例 {id} ({revision}) 目前 {memory}",
        "instance {id} ({revision}) now {memory}",
    ),
    "storage": (
        "{average}% (主機平均; 峰值 {peak}%, 最少剩餘 {free})",
        "{average}% (host average; peak {peak}%, least free {free})",
    ),
    "storage_backup": (
        "{used}% 已用 (備份所在的檔案系統 {path}, 操作結束時量測; 剩餘 {free})",
        "{used}% used (the file system the backups are kept on, {path}, measured when the "
        "operation ended; {free} free)",
    ),
    "network": (
        "送出平均 {sent} (峰值 {sent_peak}), 接收平均 {recv} (峰值 {recv_peak}); 主機整體, "
        "{samples} 次取樣 (psutil 不提供每個服務的網路計數)",
        "sent {sent} on average (peak {sent_peak}), received {recv} (peak {recv_peak}); whole "
        "host, samples: {samples} (psutil has no per-service network counters)",
    ),
    # execution
    "checks_none_pre": (
        "未設定部署前檢查 (no pre-deployment checks configured)",
        "no pre-deployment checks configured",
    ),
    "checks_none_post": ("未設定部署後檢查", "no post-deployment checks configured"),
    "checks_counts": (
        "{count} 項: {passed} 通過, {warned} 警告, {failed} 失敗",
        "checks: {count} ({passed} passed, {warned} warned, {failed} failed)",
    ),
    "check_line": ("{name}: {status} — {summary}", "{name}: {status} — {summary}"),
    "check_figures": ("({figures})", "({figures})"),
    "execution": ("{count} 個步驟", "steps: {count}"),
    "timing_switch": ("切換 {value}", "switch {value}"),
    "timing_switch_apply": ("切換路由套用 {value}", "switch routing applied in {value}"),
    "timing_rollback": ("回滾 {value}", "rollback {value}"),
    "timing_rollback_apply": ("回滾路由套用 {value}", "rollback routing applied in {value}"),
    "timing_other": ("{name} {value}", "{name} {value}"),
    "execution_omitted": (
        "另有 {count} 次未定論的中間判定未列出 (等待足夠的請求)",
        "{count} inconclusive interim verdicts not listed (waiting for enough requests)",
    ),
    "health_counts": (
        "{new}: {healthy}/{total} 個實例健康 (應有 {expected}, 重啟 {restarts} 次); 事件: "
        "{ev_healthy} 次轉為健康, {ev_unhealthy} 次不健康, {ev_crashed} 次崩潰, "
        "{ev_restarted} 次重啟",
        "{new}: {healthy}/{total} instance(s) healthy (expected: {expected}, restarts: "
        "{restarts}); events: healthy {ev_healthy}, unhealthy {ev_unhealthy}, crashed "
        "{ev_crashed}, restarted {ev_restarted}",
    ),
    "health_counts_gone": (
        "{new}: 新版本實例已全部停止; 事件: {ev_healthy} 次轉為健康, {ev_unhealthy} 次不健康, "
        "{ev_crashed} 次崩潰, {ev_restarted} 次重啟",
        "{new}: the new version's instances are all stopped; events: healthy {ev_healthy}, "
        "unhealthy {ev_unhealthy}, crashed {ev_crashed}, restarted {ev_restarted}",
    ),
    "health_stable": (
        "前一版本 {stable}: {healthy}/{total} 個實例健康",
        "previous version {stable}: {healthy}/{total} instance(s) healthy",
    ),
    "health_verified": ("回滾驗證: {verified}", "rollback verified: {verified}"),
    "final_analysis": (
        "最後分析「{label}」({judge}, {verdicts} 次判定): {outcome} — {reason}",
        "last analysis '{label}' ({judge}, verdicts: {verdicts}): {outcome} — {reason}",
    ),
    "no_analysis": ("沒有分析判定", "no analysis verdict"),
    # monitoring
    "availability": (
        "{percent}% ({requests} 個請求中 {unserved} 個未能服務: {connect} 次連線失敗, "
        "{timeouts} 次逾時; 門檻 ≥ {limit}%)",
        "{percent}% ({unserved} of {requests} requests not served: connection failures: "
        "{connect}, timeouts: {timeouts}; limit ≥ {limit}%)",
    ),
    "availability_version": (
        "{revision}: {percent}% ({requests} 個請求, {unserved} 個未服務)",
        "{revision}: {percent}% ({requests} requests, {unserved} not served)",
    ),
    "latency": (
        "平均 {average} / p95 {p95} / p99 {p99} (p50 {p50}, p90 {p90})",
        "average {average} / p95 {p95} / p99 {p99} (p50 {p50}, p90 {p90})",
    ),
    "latency_version": (
        "{revision}: 平均 {average} / p95 {p95} / p99 {p99}",
        "{revision}: average {average} / p95 {p95} / p99 {p99}",
    ),
    "latency_samples": (
        "只有取樣的各版本 p95; 平均與 p99 未測量 (沒有 summary)",
        "only the samples' p95 per version; average and p99 not measured (no summary)",
    ),
    "latency_sample_version": ("{revision}: p95 {p95}", "{revision}: p95 {p95}"),
    "error_rate": (
        "{percent}% ({errors} 個 5xx / {requests} 個請求; 4xx {client} 個不計入; "
        "回滾門檻 {limit}%)",
        "{percent}% ({errors} 5xx of {requests} requests; {client} 4xx not counted; rollback "
        "limit {limit}%)",
    ),
    "error_rate_samples": (
        "{percent}% ({errors} 個 5xx / {requests} 個請求, 取自最後一次取樣; 回滾門檻 {limit}%)",
        "{percent}% ({errors} 5xx of {requests} requests, from the last sample; rollback limit "
        "{limit}%)",
    ),
    "error_rate_version": (
        "{revision}: {percent}% ({errors} / {requests})",
        "{revision}: {percent}% ({errors} / {requests})",
    ),
    "throughput": (
        "{rps} rps ({requests} 個請求 / {seconds} s; 每個實例 {per_instance} rps, "
        "共 {replicas} 個實例)",
        "{rps} rps ({requests} requests in {seconds} s; {per_instance} rps per instance, "
        "instances: {replicas})",
    ),
    "throughput_version": (
        "{revision}: {rps} rps ({requests} 個請求)",
        "{revision}: {rps} rps ({requests} requests)",
    ),
    # performance
    "bottlenecks_found": (
        "發現 {count} 項: {names} (已測量 {measured}/{total} 條規則)",
        "{count} found: {names} ({measured}/{total} rules measured)",
    ),
    "bottlenecks_none": (
        "未發現瓶頸: 已測量的 {measured}/{total} 條規則都在門檻內",
        "no bottleneck: the {measured}/{total} measured rules are within their thresholds",
    ),
    "rule_cpu_peak": (
        "主機 CPU 峰值 ≥ {threshold}% → CPU 受限: {value}",
        "host CPU peak ≥ {threshold}% → CPU-bound: {value}",
    ),
    "rule_load_per_core": (
        "每核 load_1m ≥ {threshold} → 有工作在等待 CPU: {value}",
        "load_1m per core ≥ {threshold} → work waits for a CPU: {value}",
    ),
    "rule_memory_peak": (
        "記憶體峰值 ≥ {threshold}% → 記憶體壓力: {value}",
        "memory peak ≥ {threshold}% → memory pressure: {value}",
    ),
    "rule_disk_peak": (
        "磁碟使用峰值 ≥ {threshold}% → 儲存空間不足: {value}",
        "disk use peak ≥ {threshold}% → storage running out: {value}",
    ),
    "rule_latency_regression": (
        "新版本 p95 > {threshold} × 前一版本 → 新版本變慢: {value}",
        "new version's p95 > {threshold} × the previous one → slower release: {value}",
    ),
    "rule_new_error_rate": (
        "新版本錯誤率 ≥ {threshold}% → 應用程式錯誤: {value}",
        "new version's error rate ≥ {threshold}% → application errors: {value}",
    ),
    "rule_unserved_requests": (
        "未能服務的請求 > {threshold} → 實例拒絕連線或逾時: {value}",
        "requests not served > {threshold} → instances refused connections or timed out: {value}",
    ),
    "rule_instance_restarts": (
        "實例重啟或崩潰 > {threshold} → 不穩定: {value}",
        "instance restarts or crashes > {threshold} → unstable: {value}",
    ),
    "rule_value": ("{value} ({state})", "{value} ({state})"),
    "short_cpu_peak": ("CPU", "CPU"),
    "short_load_per_core": ("CPU 排隊", "CPU queueing"),
    "short_memory_peak": ("記憶體", "memory"),
    "short_disk_peak": ("磁碟", "disk"),
    "short_latency_regression": ("延遲退化", "latency regression"),
    "short_new_error_rate": ("錯誤率", "error rate"),
    "short_unserved_requests": ("未服務請求", "unserved requests"),
    "short_instance_restarts": ("實例不穩定", "unstable instances"),
    "advice_add_cpu": (
        "CPU 峰值 {value}% ≥ {threshold}%: 增加實例或 CPU 配額, 並剖析熱點",
        "CPU peak {value}% ≥ {threshold}%: add instances or CPU, and profile the hot paths",
    ),
    "advice_add_memory": (
        "記憶體峰值 {value}% ≥ {threshold}%: 提高記憶體或檢查記憶體洩漏",
        "memory peak {value}% ≥ {threshold}%: add memory or look for a leak",
    ),
    "advice_free_disk": (
        "磁碟峰值 {value}% ≥ {threshold}%: 清理日誌與舊版本檔案, 或擴充磁碟",
        "disk peak {value}% ≥ {threshold}%: clear old logs and release files, or grow the disk",
    ),
    "advice_over_provisioned": (
        "CPU 峰值 {cpu}% < {cpu_threshold}% 且記憶體峰值 {memory}% < {memory_threshold}%: "
        "主機資源有餘, 可合併服務或縮小主機規格",
        "CPU peak {cpu}% < {cpu_threshold}% and memory peak {memory}% < {memory_threshold}%: "
        "the host has room to spare; co-locate services or use a smaller host",
    ),
    "advice_profile_latency": (
        "新版本 p95 {new} 是前一版本 {baseline} 的 {ratio} 倍 (> {threshold}): 剖析新版本的慢路徑 "
        "(資料庫查詢, 外部呼叫)",
        "the new version's p95 {new} is {ratio}× the previous {baseline} (> {threshold}): profile "
        "its slow paths (database queries, outbound calls)",
    ),
    "advice_memory_limit": (
        "實例記憶體峰值 {peak}: 記憶體上限可設為 {factor} × 實測 ≈ {suggested}",
        "instance memory peak {peak}: a memory limit of {factor} × measured ≈ {suggested} fits",
    ),
    "advice_within_range": (
        "資源在合理範圍, 不需調整: CPU 峰值 {cpu} (介於 {low}% 與 {high}%), 記憶體峰值 {memory} "
        "(< {memory_high}%), 磁碟峰值 {disk} (< {disk_high}%)",
        "resources within range, no change needed: CPU peak {cpu} (between {low}% and {high}%), "
        "memory peak {memory} (< {memory_high}%), disk peak {disk} (< {disk_high}%)",
    ),
    "advice_not_measured": ("未測量: {reason}", "not measured: {reason}"),
    "scaling_keep": (
        "維持 {replicas} 個實例: CPU 峰值 {peak}% ≤ 目標 {target}%",
        "keep the {replicas} instance(s): CPU peak {peak}% ≤ the {target}% target",
    ),
    "scaling_out": (
        "擴展到 {recommended} 個實例: CPU 峰值 {peak}% > 目標 {target}% "
        "(規則: ⌈目前實例數 {replicas} × 峰值 / 目標⌉)",
        "scale out to {recommended} instances: CPU peak {peak}% > the {target}% target "
        "(rule: ⌈{replicas} current instances × peak / target⌉)",
    ),
    "scaling_in": (
        "可縮減到 {recommended} 個實例: CPU 峰值 {peak}% < {below}% "
        "(規則: ⌈目前實例數 {replicas} × 峰值 / 目標 {target}%⌉, 至少 {minimum} 個)",
        "can scale in to {recommended} instances: CPU peak {peak}% < {below}% "
        "(rule: ⌈{replicas} current instances × peak / {target}% target⌉, at least {minimum})",
    ),
    "scaling_not_measured": (
        "未測量: {reason}; 目前 {replicas} 個實例",
        "not measured: {reason}; instances now: {replicas}",
    ),
    "scaling_rps": (
        "目前 {rps} rps, 每個實例 {per_instance} rps",
        "{rps} rps now, {per_instance} rps per instance",
    ),
    "scaling_capacity": (
        "依 CPU 平均 {cpu}% 線性估計, 在 CPU {target}% 時約可承載 {capacity} rps ({headroom} 倍)",
        "a linear estimate from the {cpu}% average CPU: about {capacity} rps at {target}% CPU "
        "({headroom}× now)",
    ),
    # events
    "events": (
        "{count} 個事件 (另有 {samples} 次取樣): {kinds}",
        "events: {count} (plus samples: {samples}): {kinds}",
    ),
    "events_none": ("0 個事件 (另有 {samples} 次取樣)", "events: 0 (plus samples: {samples})"),
    "event_kind": ("{kind} ×{count}", "{kind} ×{count}"),
    "events_omitted": ("… 省略 {count} 個事件 …", "… events left out: {count} …"),
    "alerts_none": ("0 (期間沒有告警觸發)", "0 (no alerts fired during the window)"),
    "alerts_count": ("{count}", "{count}"),
    "alert_line": ("{name} [{severity}] {when}{message}", "{name} [{severity}] {when}{message}"),
    "incident_automatic_rollback": (
        "自動回滾: {reason}",
        "automatic rollback: {reason}",
    ),
    "incident_manual_abort": (
        "手動中止並回滾: {reason}",
        "aborted by hand and rolled back: {reason}",
    ),
    "incident_started": ("於 +{offset} s 開始回滾", "rollback started at +{offset} s"),
    "incident_switched": (
        "流量在 {took} 內切回 {target}, 路由套用 {apply}, {within}回滾目標 < {limit} s",
        "traffic back on {target} within {took}, routing applied in {apply}, {within} the "
        "< {limit} s rollback target",
    ),
    "incident_switched_short": (
        "流量在 {took} 內切回 {target}, {within}回滾目標 < {limit} s",
        "traffic back on {target} within {took}, {within} the < {limit} s rollback target",
    ),
    "incident_verified": ("驗證: {verified}", "verified: {verified}"),
    "incident_manual_rollback": (
        "手動回滾至 {target}: {reason}",
        "manual rollback to {target}: {reason}",
    ),
    "incident_failed": (
        "部署失敗且沒有可恢復的前一版本: {reason}",
        "the deployment failed with no previous release to restore: {reason}",
    ),
    "incident_drill": (
        "無事故: 演練中的服務副本由備份還原並通過煙霧測試",
        "no incident: the drill's copy came back from the backups and passed its smoke tests",
    ),
    "incident_drill_failed": (
        "演練失敗 (線上服務不受影響), 但真正的災難時服務無法如此復原: {reason}",
        "the drill failed (the live service was not affected), so a real disaster could not "
        "be recovered this way: {reason}",
    ),
    "incident_backup": (
        "無事故: 備份完成, 使用者看到的服務沒有變化",
        "no incident: the backup completed and nothing users see changed",
    ),
    "incident_restore": (
        "無事故: 備份還原到新位置, 線上服務沒有變化",
        "no incident: the backup was restored beside the live data; the live service did not "
        "change",
    ),
    "incident_restore_live": (
        "無事故: 線上資料是依要求 (--force) 以備份取代的, 不是故障",
        "no incident: the live data was replaced on request (--force), not by a failure",
    ),
    "incident_retention": (
        "無事故: 只移除了保留政策不再保留的備份",
        "no incident: only backups the retention rules no longer keep were removed",
    ),
    "incident_backup_failed": (
        "備份失敗 (線上服務不受影響), 所以沒有新的備份可用: {reason}",
        "the backup failed (the live service was not affected), so there is no fresh backup: "
        "{reason}",
    ),
    "incident_restore_failed": (
        "還原失敗: {reason}",
        "the restore failed: {reason}",
    ),
    "incident_retention_failed": (
        "部分備份沒有移除 (線上服務不受影響), 在下次執行或重啟時會完成: {reason}",
        "some backups were not removed (the live service was not affected); the next run or a "
        "restarted controller finishes them: {reason}",
    ),
    "incident_none": (
        "無事故: 部署過程沒有觸發回滾或失敗",
        "no incident: nothing rolled back or failed",
    ),
    "lesson_rollback_by_analysis": (
        "回滾由分析觸發: {failed}",
        "the analysis triggered the rollback: {failed}",
    ),
    "lesson_weight": ("當時新版本流量 {weight}%", "the new version had {weight}% of traffic then"),
    "lesson_exposure": (
        "新版本共承接 {requests} 個請求 (全部的 {share}%)",
        "the new version served {requests} requests ({share}% of all)",
    ),
    "lesson_rollback_by_user": ("由使用者中止: {reason}", "aborted by a user: {reason}"),
    "lesson_rollback_by_health": (
        "回滾由健康檢查觸發: {reason}",
        "a health check triggered the rollback: {reason}",
    ),
    "lesson_failed": ("失敗原因: {reason}", "cause of the failure: {reason}"),
    "lesson_analyses_passed": ("{count} 次分析通過", "analyses passed: {count}"),
    "lesson_latency": (
        "新版本 p95 {new} vs 前一版本 {baseline} ({ratio} 倍)",
        "new p95 {new} vs previous {baseline} ({ratio}×)",
    ),
    "lesson_analysis_inconclusive": (
        "分析「{label}」未定論: 還需要 {needed} 個請求 (已有 {have}); 分析期間需要更多流量或降低 "
        "minRequests",
        "analysis '{label}' was inconclusive: {needed} more requests needed ({have} so far); "
        "send more traffic during analysis or lower minRequests",
    ),
    "lesson_analysis_skipped": (
        "分析「{label}」被 promote 略過: 這次沒有驗證新版本",
        "analysis '{label}' was skipped by a promote: the new version went unverified",
    ),
    "lesson_instance_restarts": (
        "新版本實例重啟 {restarts} 次, 崩潰 {crashes} 次: 檢查啟動過程與資源限制",
        "the new version's instances restarted or crashed (restarts: {restarts}, crashes: "
        "{crashes}): "
        "check start-up and resource limits",
    ),
    "lesson_first_baseline_recorded": (
        "首次部署沒有前一版本可比較; 本次的延遲已記錄, 作為下次部署的基準",
        "a first deployment has nothing to compare with; its latency is recorded as the next "
        "rollout's baseline",
    ),
    "lesson_first_baseline_missing": (
        "首次部署沒有前一版本可比較; 本次沒有流量, 下次部署的延遲規則將沒有記錄的基準",
        "a first deployment has nothing to compare with; it saw no traffic, so the next "
        "rollout's latency rule has no recorded baseline",
    ),
    "lesson_drill_objective": (
        "{name} 實測 {value} 秒, 目標 {target} 秒: {verdict}",
        "{name} measured {value} s, objective {target} s: {verdict}",
    ),
    "lesson_drill_no_objective": (
        "{name} 實測 {value} 秒; 沒有設定目標",
        "{name} measured {value} s; no objective set",
    ),
    "lesson_drill_not_reached": (
        "{name}: 沒有量到 (服務沒有從備份復原)",
        "{name}: not measured (the service did not come back from the backups)",
    ),
    "lesson_backup": (
        "{target} 的備份 #{id}: {size}, 耗時 {seconds} 秒 ({rate})",
        "backup #{id} of {target}: {size} in {seconds} s ({rate})",
    ),
    "lesson_backup_growth": (
        "上一個成功的備份 {previous}, 變化 {growth}%",
        "the previous good backup was {previous}: {growth}% change",
    ),
    "lesson_backup_first": (
        "這是此目標第一個成功的備份, 沒有可比較的大小",
        "the first good backup of this target: no size to compare with",
    ),
    "lesson_restore": (
        "{target} 的備份 #{id} 還原了 {size}, 耗時 {seconds} 秒 ({rate}); "
        "還原的資料是 {age} 秒前的",
        "backup #{id} of {target}: {size} restored in {seconds} s ({rate}); the restored data is "
        "{age} s old",
    ),
    "lesson_retention": (
        "保留 {kept} 個備份, 移除 {removed} 個 (記錄大小 {removed_size}); 實際釋放磁碟 {freed}",
        "kept {kept} backup(s), removed {removed} ({removed_size} as recorded); {freed} freed "
        "on disk",
    ),
    "lesson_prune": (
        "restic prune 耗時 {seconds} 秒",
        "restic prune took {seconds} s",
    ),
    "lesson_nothing_notable": (
        "過程順利: 沒有回滾, 沒有未定論的分析, 沒有實例重啟",
        "a smooth rollout: no rollback, no inconclusive analysis, no instance restart",
    ),
    # recommendations
    "urgent_fix_release": (
        "修正 {release} 的問題後再部署: {reason}",
        "fix {release} before deploying it again: {reason}",
    ),
    "urgent_review_abort": (
        "{release} 被中止並回滾: 確認中止的原因 ({reason}) 後再部署",
        "{release} was aborted and rolled back: settle why ({reason}) before deploying again",
    ),
    "urgent_drill_failed": (
        "修正災難復原: 服務無法從備份復原: {reason}",
        "fix the recovery: the service could not be restored from its backups: {reason}",
    ),
    "urgent_backup_failed": (
        "修正備份, 再執行一次: {reason}",
        "fix the backup and run it again: {reason}",
    ),
    "urgent_restore_failed": (
        "查明還原失敗的原因: {reason}",
        "find out why the restore failed: {reason}",
    ),
    "urgent_retention_failed": (
        "查明移除失敗的原因 (備份維持 pruning, 之後會重試): {reason}",
        "find out why the removal failed (the backups stay pruning and are retried): {reason}",
    ),
    "urgent_service_down": (
        "{release} 部署失敗, 服務可能沒有健康實例: {reason}",
        "{release} failed; the service may have no healthy instance: {reason}",
    ),
    "urgent_restore_instances": (
        "{release} 只有 {healthy}/{expected} 個實例健康: 查看實例日誌 (zerodown logs)",
        "{release} has {healthy}/{expected} healthy instances: read their logs (zerodown logs)",
    ),
    "urgent_postcheck_failed": (
        "部署後檢查 {name} 失敗: 確認功能是否正常",
        "post-deployment check {name} failed: confirm the service works",
    ),
    "urgent_review_alerts": (
        "處理期間觸發的告警 ({count} 個)",
        "handle the alerts that fired ({count})",
    ),
    "urgent_free_disk": (
        "磁碟使用 {value}% ≥ {threshold}%: 立即釋放空間",
        "disk use {value}% ≥ {threshold}%: free space now",
    ),
    "urgent_none": ("無: 沒有需要立即處理的項目", "none: nothing needs immediate action"),
    "improve_latency_regression": (
        "新版本 p95 為前一版本的 {value} 倍 (> {threshold}): 剖析並優化慢路徑",
        "the new version's p95 is {value}× the previous one (> {threshold}): profile and speed "
        "up the slow paths",
    ),
    "improve_new_error_rate": (
        "新版本錯誤率 {value}% ≥ {threshold}%: 檢查應用程式日誌中的 5xx",
        "the new version's error rate {value}% ≥ {threshold}%: look for the 5xx in its logs",
    ),
    "improve_cpu_peak": (
        "CPU 峰值 {value}% ≥ {threshold}%: 優化熱點或增加容量",
        "CPU peak {value}% ≥ {threshold}%: optimise the hot paths or add capacity",
    ),
    "improve_memory_peak": (
        "記憶體峰值 {value}% ≥ {threshold}%: 降低記憶體使用或增加記憶體",
        "memory peak {value}% ≥ {threshold}%: use less memory or add some",
    ),
    "improve_slow_rollback": (
        "回滾耗時 {took} 超過目標 {limit} s: 讓前一版本保持暖機 (scaleDownDelaySeconds)",
        "the rollback took {took}, over the {limit} s target: keep the previous version warm "
        "(scaleDownDelaySeconds)",
    ),
    "improve_more_analysis_traffic": (
        "分析「{label}」缺少 {needed} 個請求: 延長分析或降低 minRequests",
        "analysis '{label}' lacked {needed} requests: analyse longer or lower minRequests",
    ),
    "improve_none": (
        "無: 各項數據都在門檻內, 維持目前設定",
        "none: every figure is within its threshold; keep the current settings",
    ),
    "prevent_configure_prechecks": (
        "設定部署前檢查 (資源容量, 依賴服務健康, 備份, 回滾計劃)",
        "configure pre-deployment checks (capacity, dependencies, backup, rollback plan)",
    ),
    "prevent_configure_postchecks": (
        "設定部署後檢查 (功能煙霧測試, 效能基準驗證)",
        "configure post-deployment checks (smoke test, performance baseline)",
    ),
    "prevent_record_baseline": (
        "前一版本沒有可比較的延遲: 分析期間讓前一版本保留流量, 讓延遲規則可以判定",
        "no latency of the previous version to compare with: keep traffic on it during "
        "analysis so the latency rule can decide",
    ),
    "prevent_reproduce_in_test": (
        "為 {release} 的失敗原因補上測試, 讓它在部署前就被發現",
        "add a test for what failed in {release}, so it is caught before deploying",
    ),
    "prevent_check_restarts": (
        "實例重啟或崩潰 {value} 次: 檢查重啟政策與啟動寬限時間",
        "instance restarts or crashes: {value}; check the restart policy and start-up grace",
    ),
    "prevent_alert_rules": (
        "設定告警規則, 讓錯誤率與延遲異常在部署以外也能被發現",
        "configure alert rules so error-rate and latency anomalies are caught outside rollouts",
    ),
    "prevent_keep_guards": (
        "維持現有的部署前後檢查與自動回滾規則",
        "keep the current pre/post checks and automatic rollback rules",
    ),
    "prevent_backups_unverified": (
        "驗證備份 {names} (zerodown backup verify): 沒有重新讀取過的備份不算確認可用",
        "verify backup(s) {names} (zerodown backup verify): a backup never re-read is not "
        "known to restore",
    ),
    "prevent_backups_unscheduled": (
        "為 {names} 設定 schedule, 讓備份不必靠人手執行",
        "give {names} a schedule, so backups do not depend on someone running them",
    ),
    "prevent_backups_no_retention": (
        "為 {names} 設定 retention, 否則備份會一直累積",
        "set retention rules for {names}, or their backups pile up for ever",
    ),
    "capacity_rps": (
        "目前 {replicas} 個實例處理 {rps} rps (每個實例 {per_instance} rps)",
        "{replicas} instance(s) serve {rps} rps ({per_instance} rps each)",
    ),
    "capacity_instances": ("目前 {replicas} 個實例", "instances now: {replicas}"),
    "capacity_estimate": (
        "以 CPU {target}% 為目標, 依平均 CPU {cpu}% 線性估計可承載約 {capacity} rps "
        "({headroom} 倍)",
        "at a {target}% CPU target, a linear estimate from the {cpu}% average CPU gives about "
        "{capacity} rps ({headroom}× now)",
    ),
    "capacity_disk": (
        "磁碟最少剩餘 {free} (峰值 {peak}%)",
        "least free disk {free} (peak {peak}%)",
    ),
    "capacity_memory": ("記憶體峰值 {peak}% (共 {total})", "memory peak {peak}% (of {total})"),
    "capacity_not_measured": (
        "主機容量未測量: {reason}",
        "host capacity not measured: {reason}",
    ),
    "capacity_replicas": ("建議實例數 {recommended}", "recommended instances: {recommended}"),
    "capacity_backup_storage": (
        "備份存放於 {path}: 剩餘 {free} / 共 {total} (已用 {used}%); "
        "此服務有 {count} 個成功的備份, 記錄大小共 {size}",
        "backups are kept in {path}: {free} free of {total} ({used}% used); the service has "
        "{count} good backup(s), {size} as recorded",
    ),
}


class Words:
    """Sentences in one language."""

    def __init__(self, lang: str) -> None:
        self.index = 0 if lang == "zh-TW" else 1

    def __call__(self, key: str, **slots: Any) -> str:
        return PHRASES[key][self.index].format(**slots)
