import java.io.FileInputStream;
import java.security.KeyStore;
import java.security.cert.Certificate;
import java.security.cert.CertificateException;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.List;
import javax.net.ssl.TrustManagerFactory;
import javax.net.ssl.X509TrustManager;

/**
 * What Elasticsearch does with a `certificate_authorities` file (elastic/elasticsearch
 * libs/ssl-config PemTrustConfig.createTrustManager): every certificate the JDK's CertificateFactory
 * reads from it (PemUtils.readCertificates), each a trusted entry of a key store
 * (KeyStoreUtil.buildTrustStore), behind the default (PKIX) trust manager (KeyStoreUtil.createTrustManager).
 * Usage: java TrustCheck.java BUNDLE PEER_CERT; prints how many CAs it read, then "trusted" or "refused: …".
 */
public class TrustCheck {
    public static void main(String[] args) throws Exception {
        CertificateFactory factory = CertificateFactory.getInstance("X.509");
        List<Certificate> authorities = new ArrayList<>();
        try (FileInputStream in = new FileInputStream(args[0])) {
            authorities.addAll(factory.generateCertificates(in));
        }
        KeyStore store = KeyStore.getInstance(KeyStore.getDefaultType());
        store.load(null, null);
        int index = 0;
        for (Certificate authority : authorities) {
            store.setCertificateEntry("ca-" + index++, authority);
        }
        TrustManagerFactory managers = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
        managers.init(store);
        X509TrustManager manager = (X509TrustManager) managers.getTrustManagers()[0];
        X509Certificate peer;
        try (FileInputStream in = new FileInputStream(args[1])) {
            peer = (X509Certificate) factory.generateCertificate(in);
        }
        System.out.println("read " + authorities.size());
        try {
            manager.checkServerTrusted(new X509Certificate[] {peer}, "RSA");
            System.out.println("trusted");
        } catch (CertificateException refused) {
            System.out.println("refused: " + refused.getMessage());
        }
    }
}
