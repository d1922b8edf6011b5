import Testing

@testable import CNIPlugin

/// The parts without I/O: the environment, the configuration's sriov-cni keys, results per version, errors.
@Suite struct ConfigAndResultTests {
    func environment(_ command: String, _ extra: [String: String] = [:]) -> [String: String] {
        ["CNI_COMMAND": command, "CNI_CONTAINERID": "abc", "CNI_NETNS": "/run/netns/x", "CNI_IFNAME": "net1"]
            .merging(extra) { $1 }
    }

    @Test func environmentErrorsAreCode4AndNameTheVariable() throws {
        for (variables, named) in [
            ([String: String](), "CNI_COMMAND"), (["CNI_COMMAND": "ADDX"], "CNI_COMMAND"),
            (environment("ADD", ["CNI_NETNS": ""]), "CNI_NETNS"),
            (environment("DEL", ["CNI_IFNAME": ""]), "CNI_IFNAME"),
            (environment("ADD", ["CNI_IFNAME": "much-too-long-name"]), "CNI_IFNAME"),
            (environment("ADD", ["CNI_CONTAINERID": "-x"]), "CNI_CONTAINERID"),
            (environment("ADD", ["CNI_ARGS": "novalue"]), "CNI_ARGS"),
        ] {
            #expect(throws: CNIError.self) { try CNIEnvironment(variables) }
            do {
                _ = try CNIEnvironment(variables)
            } catch {
                #expect(error.code == 4)
                #expect(error.msg.contains(named), "\(error)")
            }
        }
        let ok = try CNIEnvironment(environment("ADD", ["CNI_ARGS": "IgnoreUnknown=1;K8S_POD_NAME=web-0"]))
        #expect(ok.args["K8S_POD_NAME"] == "web-0")
        #expect(ok.owner == "cni:abc/net1")
        // VERSION and GC need none of the attachment's variables (libcni sends placeholders).
        #expect(throws: Never.self) { try CNIEnvironment(["CNI_COMMAND": "VERSION", "CNI_NETNS": "dummy"]) }
    }

    @Test func sriovCNIKeysBecomeSRIOVDSettings() throws {
        let text = """
            {"cniVersion":"1.0.0","name":"n","type":"sriovd-cni","deviceID":"0000:3B:02.0","vlan":100,"vlanQoS":3,
             "vlanProto":"802.1ad","mac":"02:AA:00:00:00:01","spoofchk":"off","trust":"on","link_state":"enable",
             "min_tx_rate":10,"max_tx_rate":100,"runtimeConfig":{"mac":"02:bb:00:00:00:02"},"mtu":9000}
            """
        let config = try NetworkConfig(Array(text.utf8), command: .add)
        #expect(config.deviceID?.description == "0000:3b:02.0")
        #expect(config.socket == "/run/sriovd/sriovd.sock")
        #expect(config.mtu == 9000)
        #expect(config.mac == "02:bb:00:00:00:02", "runtimeConfig.mac wins")
        #expect(
            JSON.object(config.vfConfig).text
                == #"{"link_state":"enable","mac":"02:bb:00:00:00:02","max_tx_rate":100,"min_tx_rate":10,"qos":3,"#
                + #""spoof_check":false,"trust":true,"vlan":100,"vlan_proto":"802.1ad"}"#)
    }

    @Test func configErrorsAreCode7AndNameTheKey() {
        for (text, key) in [
            (#"{"cniVersion":"1.0.0","name":"n","pf":"0000:3b:00.0","vlan":5000}"#, "vlan"),
            (#"{"cniVersion":"1.0.0","name":"n","pf":"0000:3b:00.0","vlanQoS":1}"#, "vlanQoS"),
            (#"{"cniVersion":"1.0.0","name":"n","pf":"0000:3b:00.0","spoofchk":"maybe"}"#, "spoofchk"),
            (#"{"cniVersion":"1.0.0","name":"n","deviceID":"3b:02.0"}"#, "deviceID"),
            (#"{"cniVersion":"1.0.0","name":"n"}"#, "deviceID"),
            (#"{"cniVersion":"1.0.0","pf":"0000:3b:00.0"}"#, "name"),
            (#"{"cniVersion":"1.0.0","name":"n","pf":"0000:3b:00.0","ipam":{"type":"../x"}}"#, "ipam.type"),
            (#"{"cniVersion":"1.0.0","name":"n","pf":"0000:3b:00.0","socket":"rel"}"#, "socket"),
        ] {
            do {
                _ = try NetworkConfig(Array(text.utf8), command: .add)
                Issue.record("accepted \(text)")
            } catch {
                #expect(error.code == 7, "\(text): \(error)")
                #expect(error.msg.contains(key), "\(text): \(error)")
            }
        }
        do {
            _ = try NetworkConfig(Array(#"{"cniVersion":"2.0.0","name":"n","pf":"0000:3b:00.0"}"#.utf8), command: .add)
            Issue.record("accepted 2.0.0")
        } catch {
            #expect(error.code == 1)
        }
    }

    @Test func versionAndErrorsAnswerInTheVersionAsked() {
        let version = Plugin.run(environment: ["CNI_COMMAND": "VERSION"], stdin: Array(#"{"cniVersion":"0.4.0"}"#.utf8))
        #expect(version.exitStatus == 0)
        #expect(
            String(decoding: version.stdout, as: UTF8.self)
                == #"{"cniVersion":"0.4.0","supportedVersions":["0.4.0","1.0.0","1.1.0"]}"#)
        let failed = Plugin.run(
            environment: ["CNI_COMMAND": "ADD", "CNI_CONTAINERID": "a", "CNI_IFNAME": "net1"],
            stdin: Array(#"{"cniVersion":"1.0.0","name":"n","pf":"0000:3b:00.0"}"#.utf8))
        #expect(failed.exitStatus == 1)
        let error = (try? JSON.parse(failed.stdout)) ?? .null
        #expect(error["cniVersion"]?.string == "1.0.0")
        #expect(error["code"]?.int == 4)
        #expect(error["msg"]?.string?.contains("CNI_NETNS") == true)
    }
    @Test func timingIsLoggedOnlyWhenAsked() {
        let config = Array(#"{"cniVersion":"1.0.0"}"#.utf8)
        let quiet = Plugin.run(environment: ["CNI_COMMAND": "VERSION"], stdin: config)
        #expect(quiet.log.isEmpty)
        let timed = Plugin.run(environment: ["CNI_COMMAND": "VERSION", "SRIOVD_CNI_TIMING": "1"], stdin: config)
        let line = timed.log.last ?? ""
        #expect(line.hasPrefix("sriovd-cni: timing VERSION "), "\(line)")
        let fields = Dictionary(
            line.split(separator: " ").dropFirst(3).compactMap { field -> (String, Double)? in
                let parts = field.split(separator: "=")
                guard parts.count == 2, let value = Double(parts[1]) else { return nil }
                return (String(parts[0]), value)
            }
        ) { a, _ in a }
        #expect(Set(fields.keys) == ["other", "total"], "no phase ran for VERSION: \(line)")
        #expect(fields["total"].map { $0 >= 0 && $0 == fields["other"] } == true, "\(line)")
        #expect(SRIOVDClient.phase("PUT", "/allocations/abc/attachment") == "PUT/attachment")
        #expect(SRIOVDClient.phase("GET", "/allocations?owner=x") == "GET/allocations")
    }
}
