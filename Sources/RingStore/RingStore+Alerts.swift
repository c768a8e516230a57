public import Alerts
import SQLite

extension RingStore {
    /// Inside the commit's transaction: appends the events to the alerts ring and keeps
    /// `alerts_active` equal to what is raised now.
    func storeAlerts(_ events: [AlertEvent], ring: inout RingCursor, stored: inout [StoredAlert]) throws {
        let insert = try database.statement(
            """
            INSERT INTO alerts(slot, alert_id, device, type, subject, state, value, ts_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT(slot) DO UPDATE SET alert_id = excluded.alert_id, device = excluded.device,
                type = excluded.type, subject = excluded.subject, state = excluded.state, value = excluded.value,
                ts_ms = excluded.ts_ms
            """)
        let raise = try database.statement(
            """
            INSERT INTO alerts_active(device, type, subject, state, value, since_ms, alert_id) VALUES (?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT(device, type, subject) DO UPDATE SET state = excluded.state, value = excluded.value,
                since_ms = excluded.since_ms, alert_id = excluded.alert_id
            """)
        let clear = try database.statement("DELETE FROM alerts_active WHERE device = ? AND type = ? AND subject = ?")
        for event in events {
            let (seqno, slot, _) = ring.advance()
            let alertID = "\(configuration.alertIDPrefix)-\(seqno + 1)"
            insert.bind(
                arguments: slot, alertID, event.device, event.type.rawValue, event.subject, event.state.rawValue,
                event.value, event.tsMs)
            try insert.run()
            if event.state == .cleared {
                clear.bind(arguments: event.device, event.type.rawValue, event.subject)
                try clear.run()
            } else {
                raise.bind(
                    arguments: event.device, event.type.rawValue, event.subject, event.state.rawValue, event.value,
                    event.tsMs, alertID)
                try raise.run()
            }
            stored.append(StoredAlert(alertID: alertID, event: event))
        }
    }

    /// The alerts raised and not cleared, for the alert engine after a restart.
    public func activeAlerts() throws(StoreError) -> [AlertEngine.ActiveAlert] {
        do {
            let select = try database.statement("SELECT device, type, subject, state FROM alerts_active")
            var result: [AlertEngine.ActiveAlert] = []
            while try select.step() {
                guard let device = select.text(0), let type = select.text(1).flatMap(AlertType.init(rawValue:)),
                    let state = select.text(3).flatMap(AlertState.init(rawValue:))
                else { continue }
                result.append(
                    AlertEngine.ActiveAlert(device: device, type: type, subject: select.text(2) ?? "", state: state))
            }
            select.reset()
            return result
        } catch {
            throw .sqlite(error, doing: "reading active alerts")
        }
    }

    /// Gauges in warning or alarm now, with their level and since when: a restarted gateway
    /// reopens their incidents (same start, so advisories keep their ids).
    public func activeFloodIncidents() throws(StoreError) -> [(
        sensor: String, alarm: Bool, levelCm: Double, sinceMs: Int64
    )] {
        do {
            let select = try database.statement(
                "SELECT device, state, value, since_ms FROM alerts_active WHERE type = 'water_level'")
            var result: [(sensor: String, alarm: Bool, levelCm: Double, sinceMs: Int64)] = []
            while try select.step() {
                guard let device = select.text(0), let state = select.text(1), state == "warning" || state == "alarm"
                else { continue }
                result.append((device, state == "alarm", select.double(2), select.int64(3)))
            }
            select.reset()
            return result
        } catch {
            throw .sqlite(error, doing: "reading active flood incidents")
        }
    }

    /// Vehicles told about flood incidents that had not ended when the gateway stopped.
    public func advisedVehicles() throws(StoreError) -> [(
        sensor: String, incidentStartMs: Int64, vin: String, distanceM: Double
    )] {
        do {
            let select = try database.statement(
                "SELECT sensor, incident_ms, vin, distance_m FROM advisories_told ORDER BY sensor, vin")
            var result: [(sensor: String, incidentStartMs: Int64, vin: String, distanceM: Double)] = []
            while try select.step() {
                result.append((select.text(0) ?? "", select.int64(1), select.text(2) ?? "", select.double(3)))
            }
            select.reset()
            return result
        } catch {
            throw .sqlite(error, doing: "reading the vehicles told about flood incidents")
        }
    }

    /// Forgets who was told about incidents that are over (their gauge has no level alert
    /// any more): called at start, so the table holds only running incidents.
    public func forgetAdvisedOfEndedIncidents() throws(StoreError) {
        do {
            try database.execute(
                """
                DELETE FROM advisories_told WHERE sensor NOT IN (
                    SELECT device FROM alerts_active WHERE type = 'water_level' AND state IN ('warning', 'alarm'))
                """)
        } catch {
            throw .sqlite(error, doing: "forgetting advisories of ended incidents")
        }
    }
}
